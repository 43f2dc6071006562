"""`modelspec evaluate` and `modelspec predict`: restore a run's latest checkpoint and run
the model in inference mode, batched and jitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelspec.compiler.load import analysis
from modelspec.compiler.shapes import input_types
from modelspec.errors import DataError, Diagnostic, SpecError, did_you_mean
from modelspec.runtime.checkpoint import Checkpointer, restore_checked, run_dir_error
from modelspec.runtime.data import load_data
from modelspec.runtime.distribute import put_batch
from modelspec.runtime.evaluation import evaluate_dataset
from modelspec.runtime.objectives import losses_by_output
from modelspec.runtime.session import Session, open_session
from modelspec.schema.data import DataSpec


def restore_latest(session: Session, run_dir: Path) -> Any:
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=None, async_save=False)
    step = ckpt.latest_step()
    if step is None:
        ckpt.close()
        raise run_dir_error(
            run_dir,
            "--run-dir",
            "no checkpoint found in this run directory",
            hint="Train first: modelspec train SPEC --run-dir DIR.",
        )
    state, _ = restore_checked(ckpt, step, session.state, run_dir)
    ckpt.close()
    return state


def evaluate(
    source: Any,
    run_dir: str | Path,
    overrides: list[str] | tuple = (),
    *,
    data: str | Path | None = None,
) -> dict[str, float]:
    """Loss and metrics of the run's latest checkpoint on its validation data, or on an
    .npz file whose arrays are named after the model inputs and outputs."""
    session = open_session(source, overrides, data=data is None)
    state = restore_latest(session, Path(run_dir))
    spec = session.spec
    batch_size = spec.data.batch_size if spec.data is not None else 32
    if data is not None:
        dataset = _npz_dataset(session, Path(data), batch_size)
    else:
        dataset = session.data.validation
    if dataset is None:
        raise SpecError.single(
            Diagnostic(
                "<command line>",
                0,
                0,
                "--data",
                "the spec has no validation data",
                hint="Pass --data FILE.npz, or set data.validation_split.",
            )
        )
    return evaluate_dataset(session, state, dataset, batch_size)


def _npz_dataset(session: Session, path: Path, batch_size: int):
    """An .npz given on the command line, checked against the model like spec data."""
    spec = session.spec
    an = analysis(spec)
    data_spec = DataSpec.model_validate(
        {"train": {"type": "npz", "path": str(path.resolve())}, "batch_size": batch_size}
    )
    return load_data(
        data_spec,
        model_inputs=input_types(spec),
        model_outputs={n: an.shapes[n].output for n in an.graph.outputs},
        losses=losses_by_output(spec),
        seed=spec.seed,
        base_dir=Path.cwd(),
        locate=lambda _path: (str(path), 0, 0),
    ).train


def predict(
    source: Any,
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    overrides: list[str] | tuple = (),
    *,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Run the model on arrays named after its inputs; save arrays named after its outputs."""
    session = open_session(source, overrides, data=False)
    state = restore_latest(session, Path(run_dir))
    spec = session.spec
    types = input_types(spec)
    arrays = _read_inputs(Path(input_path), types)
    n = len(next(iter(arrays.values())))
    bs = batch_size or (spec.data.batch_size if spec.data else 32)
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, bs):
        part = {k: v[start : start + bs] for k, v in arrays.items()}
        real = len(next(iter(part.values())))
        if real < bs:  # pad to one batch shape: one compilation for every batch
            part = {
                k: np.concatenate([v, np.repeat(v[:1], bs - real, axis=0)]) for k, v in part.items()
            }
        out = session.predict_step(state, put_batch(session.dist, part))
        for name, value in out.items():
            chunks.setdefault(name, []).append(np.asarray(value)[:real])
    outputs = {name: np.concatenate(parts) for name, parts in chunks.items()}
    np.savez(output_path, **outputs)
    return outputs


def _read_inputs(path: Path, types) -> dict[str, np.ndarray]:
    where = str(path)
    try:
        archive = np.load(path)
    except (OSError, ValueError) as exc:
        raise DataError(
            [Diagnostic(where, 0, 0, "--input", f"cannot read the input file: {exc}")]
        ) from None
    names = list(archive.files) if hasattr(archive, "files") else []
    errors, arrays = [], {}
    for name, t in types.items():
        if name not in names:
            errors.append(
                Diagnostic(
                    where,
                    0,
                    0,
                    f"--input.{name}",
                    f"no array named '{name}' (a model input)",
                    received=", ".join(names) or "no arrays",
                    hint=did_you_mean(name, names),
                )
            )
            continue
        arr = archive[name]
        want = tuple(t.shape[1:])
        if arr.ndim != len(want) + 1 or any(
            w is not None and w != g for w, g in zip(want, arr.shape[1:], strict=False)
        ):
            errors.append(
                Diagnostic(
                    where,
                    0,
                    0,
                    f"--input.{name}",
                    f"array '{name}' has shape {arr.shape}, model input expects "
                    f"(N, {', '.join('None' if d is None else str(d) for d in want)})",
                )
            )
            continue
        arrays[name] = arr.astype(t.dtype)
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        errors.append(
            Diagnostic(
                where,
                0,
                0,
                "--input",
                "input arrays differ in length",
                received=str({k: len(v) for k, v in arrays.items()}),
            )
        )
    if errors:
        raise DataError(errors)
    return arrays
