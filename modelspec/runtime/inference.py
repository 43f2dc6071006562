"""`modelspec evaluate` and `modelspec predict`: restore a run's latest checkpoint and run
the model in inference mode, batched and jitted."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.compiler.infer import input_types
from modelspec.compiler.sharding.mesh import put_batch
from modelspec.errors import Diagnostic, SpecError
from modelspec.runtime.data.dataset import load_data
from modelspec.runtime.data.id_bounds import id_bounds
from modelspec.runtime.data.predict_inputs import is_image_input, read_image_inputs, read_inputs
from modelspec.runtime.data.predict_text import is_text_input, read_text_inputs
from modelspec.runtime.evaluation import evaluate_dataset
from modelspec.runtime.objective.objective import losses_by_output
from modelspec.runtime.restore import restore_latest
from modelspec.runtime.session import Session, open_session
from modelspec.runtime.spec_diff import check_model_unchanged
from modelspec.schema.data import DataSpec


def evaluate(
    source: Any,
    run_dir: str | Path,
    overrides: list[str] | tuple = (),
    *,
    data: str | Path | None = None,
    allow_spec_change: bool = False,
    best: bool = False,
) -> dict[str, float]:
    """Loss and metrics of the run's latest checkpoint on its validation data, or on an
    .npz file whose arrays are named after the model inputs and outputs. Refuses a
    model that differs from the run's spec.yaml unless `allow_spec_change`."""
    session = open_session(source, overrides, data=data is None)
    check_model_unchanged(Path(run_dir), session.spec, allow=allow_spec_change)
    state, step = restore_latest(session, Path(run_dir), best=best)
    spec = session.spec
    batch_size = spec.data.batch_size if spec.data is not None else 32
    if data is not None:
        dataset = _npz_dataset(session, Path(data), batch_size)
    else:
        dataset = session.data.validation
    if dataset is not None:
        print(f"Evaluating checkpoint step {step} on {_split_name(spec, data)}", file=sys.stderr)
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
    if session.host:  # the text layers, with the checkpoint's vocabularies
        dataset = session.host.encode_dataset(dataset)
    return evaluate_dataset(session, state, dataset, batch_size)


def _split_name(spec: Any, data: str | Path | None) -> str:
    """Which data `evaluate` reads, in words: the --data file, or the spec's split."""
    if data is not None:
        return f"{data} (--data)"
    d = spec.data
    if d.validation is not None:
        return "the spec's data.validation"
    how = (
        "the last samples" if d.split == "last" else f"a random subset drawn from seed {spec.seed}"
    )
    return (
        f"the validation split of the spec's data.train (validation_split="
        f"{d.validation_split}: {how})"
    )


def _npz_dataset(session: Session, path: Path, batch_size: int):
    """An .npz given on the command line, checked against the model like spec data."""
    spec = session.spec
    an = spec
    data_spec = DataSpec.model_validate(
        {"train": {"type": "npz", "path": str(path.resolve())}, "batch_size": batch_size}
    )
    return load_data(
        data_spec,
        model_inputs=input_types(spec),
        model_outputs={n: an.output_type(n) for n in an.graph.outputs},
        losses=losses_by_output(spec),
        seed=spec.seed,
        base_dir=Path.cwd(),
        locate=lambda _path: (str(path), 0, 0),
        id_limits=id_bounds(spec.graph),
    ).train


def predict(
    source: Any,
    run_dir: str | Path,
    input_path: str | Path | Sequence[str | Path],
    output_path: str | Path,
    overrides: list[str] | tuple = (),
    *,
    batch_size: int | None = None,
    allow_spec_change: bool = False,
    best: bool = False,
) -> dict[str, np.ndarray]:
    """Run the model on arrays named after its inputs (or on image files and folders,
    read as the spec's image_folder source reads them); save arrays named after its
    outputs. Refuses a model that differs from the run's spec.yaml unless
    `allow_spec_change`."""
    session = open_session(source, overrides, data=False)
    spec = session.spec
    # Bad input is refused before the checkpoint is read (fast, and nothing restored).
    paths = (
        [Path(input_path)] if isinstance(input_path, str | Path) else list(map(Path, input_path))
    )
    if is_text_input(paths, input_types(spec)):  # .txt files/folders, as text_folder reads
        arrays = read_text_inputs(paths, input_types(spec), spec.data)
    elif is_image_input(paths):  # image files/folders, read as the image_folder source does
        arrays = read_image_inputs(paths, input_types(spec), spec.data)
    else:
        arrays = _read_inputs(
            paths[0],
            input_types(spec),
            allow_nonfinite=bool(spec.data is not None and spec.data.allow_nonfinite),
        )
    check_model_unchanged(Path(run_dir), spec, allow=allow_spec_change)
    state, _ = restore_latest(session, Path(run_dir), best=best)
    if session.host:  # the text layers, with the checkpoint's vocabularies
        arrays = session.host.encode_inputs(arrays)
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
    outputs = {name: _portable(np.concatenate(parts)) for name, parts in chunks.items()}
    for line in nonfinite_warnings(outputs):
        print(line, file=sys.stderr)
    _write_outputs(Path(output_path), outputs)
    return outputs


def input_names(source: Any, paths: Sequence[Path], overrides: Sequence[str], n: int) -> list[str]:
    """What `predict` calls each of its `n` inputs in its printed lines: the file of
    each image or text, else its row number."""
    from modelspec.compiler.load import load
    from modelspec.runtime.data.predict_inputs import image_input_files
    from modelspec.runtime.data.predict_text import text_input_files

    paths = [Path(p) for p in paths]
    if is_text_input(paths, input_types(load(source, list(overrides)))):
        return text_input_files(paths)[0]
    if is_image_input(paths):
        return image_input_files(paths)[0]
    return [str(i) for i in range(n)]


def _portable(value: np.ndarray) -> np.ndarray:
    """numpy has no bfloat16 (a `mixed_bfloat16` model's outputs are ml_dtypes'): np.savez
    would store it as raw 2-byte voids (`V2`) that read back as no number, and NumPy's
    float checks skip it. float32 holds every bfloat16 value exactly."""
    return value.astype(np.float32) if value.dtype.name == "bfloat16" else value


def nonfinite_warnings(outputs: dict[str, np.ndarray]) -> list[str]:
    """A warning per output holding NaN or inf: weights that are finite can still
    overflow on some inputs, and a silent NaN in a predictions file is worse than a
    word on stderr."""
    lines = []
    for name, value in outputs.items():
        if not np.issubdtype(value.dtype, np.inexact):
            continue
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            lines.append(
                f"Warning: {bad:,} of {value.size:,} values of output '{name}' are NaN or "
                "infinite (the trained weights overflow on these inputs)."
            )
    return lines


def output_file(path: str | Path) -> Path:
    """Where `predict` writes: np.savez adds `.npz` to a name without it."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _write_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """np.savez, with a full disk or a bad path as a user error instead of a traceback.
    Written through an open file, so a device (/dev/full) reports its error too."""
    try:
        with open(output_file(path), "wb") as f:
            np.savez(f, **outputs)
    except OSError as exc:
        if output_file(path).is_file():
            output_file(path).unlink()  # no half-written outputs left behind
        raise SpecError.single(
            Diagnostic(
                str(path), 0, 0, "--output", f"cannot write the outputs: {exc.strerror or exc}"
            )
        ) from None


def _read_inputs(path: Path, types, *, allow_nonfinite: bool = False) -> dict[str, np.ndarray]:
    """The model inputs from the `--input` .npz, checked like training data (see
    `predict_inputs`): every problem is a `DataError` naming the file and the array."""
    return read_inputs(path, types, allow_nonfinite=allow_nonfinite)
