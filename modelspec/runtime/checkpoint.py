"""Checkpoints: orbax `CheckpointManager`, atomic and asynchronous, verified on restore.

A checkpoint holds the whole TrainState (params, optimizer state, batch statistics,
dropout RNG, metric accumulators, step) as a flat dict of arrays, plus JSON metadata:
the data position (epoch, next batch), callback states, the epochs already logged, the
state's structure (paths, shapes, dtypes) and a digest of every array
(`runtime/digest.py`). The structure is compared on restore, so a spec that changed
incompatibly is reported instead of failing deep inside orbax; the digest is compared
after restore, so a damaged file is reported instead of silently giving other weights.
Anything orbax cannot read becomes `CheckpointDamaged`, never a traceback.

A checkpoint written before digests existed (no `digest` in its metadata) is accepted;
`Checkpointer.unverified` then names the step so the caller can say it was not checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from modelspec.errors import Diagnostic, SpecError
from modelspec.runtime.digest import digests


def _quiet_closed_loop(unraisable: Any, previous: Any = sys.unraisablehook) -> None:
    """When orbax fails to read or write, it closes its asyncio loop while tensorstore
    callbacks are still pending; each then prints a 'RuntimeError: Event loop is closed'
    traceback. The failure itself reaches the caller (and is reported once): drop these."""
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
        return
    previous(unraisable)


sys.unraisablehook = _quiet_closed_loop

MODEL_FIELDS = (".params", ".batch_stats", ".frozen")
"""The TrainState fields inference needs (not the optimizer state, metrics or RNG)."""

_META_KEYS = {"structure", "epoch", "next_batch", "epochs_logged", "callbacks", "finished"}


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


def _in_fields(path: str, fields: tuple[str, ...] | None) -> bool:
    return fields is None or any(path == f or path.startswith((f + "[", f + ".")) for f in fields)


def _short(exc: BaseException) -> str:
    """The first line of an orbax/tensorstore error, without tensorstore's driver chain."""
    raw = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # no repr quotes
    lines = [line for line in str(raw).splitlines() if line.strip()]
    text = re.sub(r'Error opening "\w+" driver: ', "", lines[0] if lines else "")
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CheckpointMismatch(Exception):
    """The checkpoint was written for a different model or optimizer."""

    def __init__(self, step: int, lines: list[str], paths: list[str] = ()):
        super().__init__("; ".join(lines))
        self.step, self.lines = step, lines
        self.paths = list(paths)
        """Every differing variable path (`lines` shows the first few)."""


class CheckpointDamaged(Exception):
    """A checkpoint that cannot be read back as it was written (`reason` says why)."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"checkpoint step {step} is damaged: {reason}")
        self.step, self.reason = step, reason


class Checkpointer:
    """Save/restore TrainState + metadata under `<run_dir>/checkpoints`."""

    def __init__(self, directory: Path, *, max_to_keep: int | None, async_save: bool):
        self.directory = Path(directory).resolve()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.unverified: int | None = None  # last restored step that had no digest
        self._closed = False

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Every step on disk, readable or not. orbax lists only the directories it can
        read, so it would silently pass over a damaged latest step."""
        if not self.directory.is_dir():
            return []
        return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())

    def save(
        self, step: int, state: Any, meta: dict[str, Any], extra: dict[str, Any] | None = None
    ) -> None:
        flat, structure, _ = flatten(state)
        digest = {"state": digests(flat)}
        items = {"state": ocp.args.StandardSave(flat)}
        if extra:
            extra_flat, _, _ = flatten(extra)
            items["extra"] = ocp.args.StandardSave(extra_flat)
            digest["extra"] = digests(extra_flat)
        items["meta"] = ocp.args.JsonSave({**meta, "structure": structure, "digest": digest})
        if step in self.steps():
            # A rerun that ends where an earlier attempt stopped (fewer epochs, say)
            # saves its final state at that step again: the newer state replaces it.
            self.manager.wait_until_finished()
            self.manager.delete(step)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def read_meta(self, step: int) -> dict[str, Any]:
        """The step's metadata; CheckpointDamaged if it is missing or unreadable."""
        path = self.directory / str(step)
        if not path.is_dir():
            what = "it is a file, not a checkpoint directory" if path.exists() else "it is gone"
            raise CheckpointDamaged(step, what)
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
                "meta"
            ]
        except Exception as exc:
            raise CheckpointDamaged(step, f"its metadata cannot be read ({_short(exc)})") from None
        if not isinstance(meta, dict) or not _META_KEYS <= set(meta):
            raise CheckpointDamaged(step, "its metadata is incomplete")
        return meta

    def restore(
        self,
        step: int,
        like: Any,
        extra_like: Any | None = None,
        meta: dict | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> tuple[Any, Any]:
        """Restore into the structure of `like`: CheckpointMismatch if it differs,
        CheckpointDamaged if the arrays cannot be read or do not match their digest.
        `meta`: the step's metadata when the caller has already read it. `fields`: restore
        only these TrainState fields (e.g. MODEL_FIELDS), keep the rest of `like`."""
        meta = meta if meta is not None else self.read_meta(step)
        flat_like, current, _ = flatten(like)
        saved = meta["structure"]
        keep = [
            k for k, entry in zip(flat_like, current, strict=True) if _in_fields(entry[0], fields)
        ]
        want = [list(current[int(k)]) for k in keep]
        have = [saved[int(k)] if int(k) < len(saved) else None for k in keep]
        if have != want or (fields is None and len(saved) != len(current)):
            chosen = [s for s in saved if _in_fields(s[0], fields)]
            a, b = {e[0] for e in chosen}, {e[0] for e in want}
            raise CheckpointMismatch(step, structure_diff(chosen, want), sorted(a ^ b))
        subset = {k: flat_like[k] for k in keep}
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, subset)
        if fields is None:
            items = {"state": ocp.args.StandardRestore(abstract)}
        else:
            items = {
                "state": ocp.args.PyTreeRestore(
                    item=abstract,
                    restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                    partial_restore=True,
                )
            }
        if extra_like is not None:
            extra_flat, _, _ = flatten(extra_like)
            items["extra"] = ocp.args.StandardRestore(
                jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, extra_flat)
            )
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as exc:
            raise CheckpointDamaged(step, f"its arrays cannot be read ({_short(exc)})") from None
        self._verify(step, meta, "state", restored["state"], saved)
        if extra_like is not None:
            self._verify(step, meta, "extra", restored["extra"], None)
        state = unflatten({**flat_like, **restored["state"]}, like)
        extra = unflatten(restored["extra"], extra_like) if extra_like is not None else None
        return state, extra

    def _verify(
        self, step: int, meta: dict, item: str, flat: dict[str, Any], structure: list | None
    ) -> None:
        digest = meta.get("digest")
        if digest is None:
            self.unverified = step
            return
        if not isinstance(digest, dict):
            raise CheckpointDamaged(step, "the digest in its metadata is unreadable")
        keys = sorted(flat)
        expected = digest.get(item) or []
        got = digests(flat)
        bad = [
            k
            for k, d in zip(keys, got, strict=True)
            if int(k) >= len(expected) or expected[int(k)] != d
        ]
        if bad:
            names = [structure[int(k)][0] if structure else f"{item}[{int(k)}]" for k in bad]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise CheckpointDamaged(
                step, f"its arrays do not match the digest saved with them ({shown})"
            )

    def has_extra(self, step: int) -> bool:
        return (self.directory / str(step) / "extra").exists()

    def set_aside(self, step: int) -> Path:
        """Rename a damaged step out of orbax's way (it would refuse to save that step
        again); nothing is deleted."""
        source = self.directory / str(step)
        target = self.directory / f"{step}.damaged"
        n = 1
        while target.exists():
            n += 1
            target = self.directory / f"{step}.damaged{n}"
        source.rename(target)
        self.manager.reload()
        return target

    def reload(self) -> None:
        self.manager.reload()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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
    ckpt: Checkpointer,
    step: int,
    state,
    run_dir: Path,
    extra_like=None,
    meta: dict | None = None,
    fields: tuple[str, ...] | None = None,
):
    """Restore, turning a structure mismatch into a user error that names the fix.
    CheckpointDamaged passes through: training falls back, inference refuses."""
    try:
        return ckpt.restore(step, state, extra_like, meta, fields)
    except CheckpointMismatch as exc:
        ckpt.close()
        what = "model" if fields is not None else "model or optimizer"
        hint = _scan_hint(exc.paths)
        raise run_dir_error(
            run_dir,
            "checkpoint",
            f"the checkpoint at step {step} in {run_dir} does not fit this spec (the {what} "
            "changed): " + "; ".join(exc.lines),
            *((hint,) if hint else ()),
        ) from None


def _scan_hint(paths: list[str]) -> str | None:
    """The likely fix when the difference is one repeated block's layout: its copies'
    variables stacked (`['layers']['h']`, scanned) on one side and per copy
    (`['layers']['h/0/...']`, unrolled) on the other."""
    text = " ".join(paths)
    stacked = set(re.findall(r"\['layers'\]\['([^'/]+)'\]", text))
    per_copy = set(re.findall(r"\['layers'\]\['([^'/]+)/\d+/", text))
    both = sorted(stacked & per_copy)
    if not both:
        return None
    return (
        f"Block use '{both[0]}' is scanned on one side and unrolled on the other (a scan "
        "stacks its copies' variables): set `scan:` on that use to what the run was "
        "trained with (`scan: false` for a run trained unrolled)."
    )
