"""Checkpoints: orbax `CheckpointManager`, atomic and asynchronous.

A checkpoint holds the whole TrainState (params, optimizer state, batch statistics,
dropout RNG, metric accumulators, step) as a flat dict of arrays, plus JSON metadata:
the data position (epoch, next batch), callback states, the epochs already logged, and
the state's structure (paths, shapes, dtypes). The structure is compared on resume, so
a spec that changed incompatibly is reported instead of failing deep inside orbax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from modelspec.errors import Diagnostic, SpecError


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree: Any) -> tuple[dict[str, Any], list[list], Any]:
    """Tree -> ({index: array}, structure description, treedef); PRNG keys as raw data."""
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    flat, structure = {}, []
    for i, (path, leaf) in enumerate(leaves_with_paths):
        key_leaf = _is_key(leaf)
        value = jax.random.key_data(leaf) if key_leaf else leaf
        flat[f"{i:06d}"] = value
        structure.append(
            [jax.tree_util.keystr(path), list(np.shape(value)), str(value.dtype), key_leaf]
        )
    return flat, structure, treedef


def unflatten(flat: dict[str, Any], like: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(like)
    out = []
    for i, leaf in enumerate(leaves):
        value = flat[f"{i:06d}"]
        out.append(
            jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
            if _is_key(leaf)
            else value
        )
    return jax.tree_util.tree_unflatten(treedef, out)


def structure_diff(saved: list[list], current: list[list], limit: int = 5) -> list[str]:
    """Human lines describing how two state structures differ."""
    a = {s[0]: s[1:3] for s in saved}
    b = {s[0]: s[1:3] for s in current}
    lines = []
    for path in b:
        if path not in a:
            lines.append(f"new in the spec: {path} {tuple(b[path][0])}")
        elif a[path] != b[path]:
            lines.append(
                f"{path}: checkpoint {tuple(a[path][0])} {a[path][1]}, "
                f"spec {tuple(b[path][0])} {b[path][1]}"
            )
    lines += [f"only in the checkpoint: {p} {tuple(a[p][0])}" for p in a if p not in b]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


class CheckpointMismatch(Exception):
    """The checkpoint was written for a different model or optimizer."""

    def __init__(self, step: int, lines: list[str]):
        super().__init__("; ".join(lines))
        self.step, self.lines = step, lines


class Checkpointer:
    """Save/restore TrainState + metadata under `<run_dir>/checkpoints`."""

    def __init__(self, directory: Path, *, max_to_keep: int | None, async_save: bool):
        self.directory = Path(directory).resolve()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(
        self, step: int, state: Any, meta: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> None:
        flat, structure, _ = flatten(state)
        items = {
            "state": ocp.args.StandardSave(flat),
            "meta": ocp.args.JsonSave({**meta, "structure": structure}),
        }
        if extra:
            extra_flat, _, _ = flatten(extra)
            items["extra"] = ocp.args.StandardSave(extra_flat)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def read_meta(self, step: int) -> dict[str, Any]:
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]

    def restore(
        self, step: int, like: Any, extra_like: Any | None = None, meta: dict | None = None
    ) -> tuple[Any, Any]:
        """Restore into the structure of `like`; CheckpointMismatch if it differs.
        `meta`: the step's metadata when the caller has already read it."""
        flat_like, current, _ = flatten(like)
        saved = (meta if meta is not None else self.read_meta(step)).get("structure", [])
        if saved != [list(x) for x in current]:
            raise CheckpointMismatch(step, structure_diff(saved, current))
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, flat_like)
        items = {"state": ocp.args.StandardRestore(abstract)}
        if extra_like is not None:
            extra_flat, _, _ = flatten(extra_like)
            items["extra"] = ocp.args.StandardRestore(
                jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, extra_flat)
            )
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        state = unflatten(restored["state"], like)
        extra = unflatten(restored["extra"], extra_like) if extra_like is not None else None
        return state, extra

    def has_extra(self, step: int) -> bool:
        return (self.directory / str(step) / "extra").exists()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def run_dir_error(
    run_dir: Path,
    path: str,
    message: str,
    hint: str = "Run with --restart to start over, or use another --run-dir.",
) -> SpecError:
    """A problem with a run directory (it has no file position: the run dir is named)."""
    return SpecError.single(Diagnostic(str(run_dir), 0, 0, path, message, hint=hint))


def restore_checked(
    ckpt: Checkpointer, step: int, state, run_dir: Path, extra_like=None, meta: dict | None = None
):
    """Restore, turning a structure mismatch into a user error that names the fix."""
    try:
        return ckpt.restore(step, state, extra_like, meta)
    except CheckpointMismatch as exc:
        ckpt.close()
        raise run_dir_error(
            run_dir,
            "checkpoint",
            f"the checkpoint at step {step} in {run_dir} does not fit this spec (the model or "
            "optimizer changed): " + "; ".join(exc.lines),
        ) from None
