"""`modelspec export`: restore the weights to export, then hand them to a format module.

The weights are the run's newest checkpoint (as `predict` uses), the checkpoint of
`--step N`, or with `--untrained` the fresh weights the spec's seed gives (no run
needed: for trying an export pipeline before training). The model is checked against
the run's `spec.yaml` like `predict` checks it: weights exported under a changed
activation would silently compute something else.

Format modules are named in `FORMATS` and imported only when their format is asked
for, so an optional package that one format needs (onnx, h5py) is never imported by
the others, and its absence is one clear error naming the extra to install.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelspec.errors import Diagnostic, SpecError, choices_hint, short_repr
from modelspec.schema.vocabulary import load_reference

FORMATS: dict[str, str] = {
    "onnx": "modelspec.runtime.export.onnx_export:export_onnx",
    "stablehlo": "modelspec.runtime.export.stablehlo:export_stablehlo",
    "keras": "modelspec.runtime.export.keras_file:export_keras",
}
"""Format name -> its `export_<format>(session, state, output) -> list[Path]`."""

OUTPUT_NAMES: dict[str, str] = {
    "onnx": "model.onnx",
    "stablehlo": "model.stablehlo",  # a folder: program, weights, manifest
    "keras": "model.keras",
}
"""The default output under `<run_dir>/export/` for each format."""

EXTRA = "export"
"""The pyproject extra that installs every optional package an export format needs."""


def _command_line_error(path: str, message: str, received: Any = None, hint: str | None = None):
    shown = short_repr(received) if received is not None else None
    return SpecError.single(Diagnostic("<command line>", 0, 0, path, message, shown, hint))


def default_output(run_dir: str | Path, format: str) -> Path:
    """Where an export goes without `-o`: `<run_dir>/export/model.<ext>`."""
    return Path(run_dir) / "export" / OUTPUT_NAMES[format]


def _missing_package(format: str, exc: ModuleNotFoundError) -> SpecError | None:
    """The user error for an optional package that is not installed; None when the
    missing module is modelspec's own (a bug, not an installation problem)."""
    root = (exc.name or "").split(".")[0]
    if not root or root == "modelspec":
        return None
    return _command_line_error(
        "--format",
        f"the {format} export needs the Python package '{root}', which is not installed",
        hint=f"Install the export extra: pip install 'modelspec[{EXTRA}]'.",
    )


def load_format(format: str) -> Callable[..., list[Path]]:
    """The format's export function; an unknown format or a missing optional package is
    a user error (checked before anything is restored, so it fails fast)."""
    if format not in FORMATS:
        raise _command_line_error(
            "--format", "unknown export format", format, choices_hint(format, list(FORMATS))
        )
    try:
        return load_reference(FORMATS[format])
    except ModuleNotFoundError as exc:
        error = _missing_package(format, exc)
        if error is None:
            raise
        raise error from None


def _refuse_unadapted_host_layers(session: Any) -> None:
    """`--untrained` has no vocabulary for host layers that learn theirs (`adapt`) in
    training: an export would hold an empty preprocessing state, so it is refused."""
    if not session.host:
        return
    names = [name for name, layer in session.host.layers.items() if layer.needs_adapt]
    if names:
        raise _command_line_error(
            "--untrained",
            f"the host layers {names} learn their vocabulary in training (Keras's adapt), "
            "so untrained weights have none to export",
            hint="Export a trained run (without --untrained), or give these layers a "
            "`vocabulary` in the spec.",
        )


def export(
    spec: Any,
    run_dir: str | Path,
    *,
    format: str,
    output: str | Path | None = None,
    overrides: Sequence[str] = (),
    step: int | None = None,
    untrained: bool = False,
    allow_spec_change: bool = False,
    best: bool = False,
) -> list[Path]:
    """Export the run's model in `format` to `output` (default `default_output`); the
    files written. Restores the newest checkpoint, or `step`'s, or (`untrained`) none."""
    exporter = load_format(format)
    if untrained and best:
        raise _command_line_error(
            "--best",
            "--best chooses the best checkpoint, and --untrained exports none",
            hint="Pass one of them.",
        )
    if untrained and step is not None:
        raise _command_line_error(
            "--step",
            "--step chooses a checkpoint, and --untrained exports none",
            step,
            hint="Pass one of them.",
        )
    from modelspec.runtime.restore import restore_latest
    from modelspec.runtime.session import open_session
    from modelspec.runtime.spec_diff import check_model_unchanged

    session = open_session(spec, list(overrides), data=False)
    run_dir = Path(run_dir)
    if untrained:
        _refuse_unadapted_host_layers(session)
        state = session.state
        print(
            f"Exporting untrained weights (initialized from seed {session.spec.seed})",
            file=sys.stderr,
        )
    else:
        check_model_unchanged(run_dir, session.spec, allow=allow_spec_change)
        state, _ = restore_latest(session, run_dir, step, best=best)
    target = Path(output) if output is not None else default_output(run_dir, format)
    try:
        return exporter(session, state, target)
    except ModuleNotFoundError as exc:  # a format module importing its package lazily
        error = _missing_package(format, exc)
        if error is None:
            raise
        raise error from None
    except OSError as exc:
        raise SpecError.single(
            Diagnostic(
                str(target),
                0,
                0,
                "--output",
                f"cannot write the {format} export: {exc.strerror or exc}",
            )
        ) from None


__all__ = ["EXTRA", "FORMATS", "OUTPUT_NAMES", "default_output", "export", "load_format"]
