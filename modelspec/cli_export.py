"""`modelspec export` and `modelspec import` (Keras `.keras` files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelspec.cli_common import (
    AllowOutside,
    AllowSpecChange,
    Best,
    RunDir,
    SetOption,
    _fail,
    _restored_run,
    _run_dir,
    app,
)
from modelspec.errors import SpecError, printable


@app.command()
def export(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="onnx (a .onnx file for onnxruntime), stablehlo (a folder: jax.export "
            "program, weights, manifest) or keras (a Keras 3 .keras file).",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File (onnx, keras) or folder (stablehlo) to write (default: "
            "<run dir>/export/model.onnx, model.stablehlo or model.keras).",
        ),
    ] = None,
    run_dir: RunDir = None,
    step: Annotated[
        int | None,
        typer.Option("--step", help="Export this checkpoint step instead of the newest."),
    ] = None,
    untrained: Annotated[
        bool,
        typer.Option(
            "--untrained",
            help="Export fresh weights from the spec's seed; no run or checkpoint needed.",
        ),
    ] = False,
    best: Best = False,
    set_: SetOption = None,
    allow_spec_change: AllowSpecChange = False,
    allow_outside: AllowOutside = False,
) -> None:
    """Export a trained model's inference function (dynamic batch size, inputs and
    outputs named after the spec's) to run without modelspec. Names the checkpoint step
    used on stderr; refuses a damaged checkpoint and a model that differs from the run's
    spec.yaml. A model with text layers is exported from their outputs on, their
    vocabularies written beside it (preprocessing.json). Prints the files written."""
    from modelspec.runtime.export.run import export as run_export

    with _restored_run(allow_outside):
        written = run_export(
            spec,
            _run_dir(spec, run_dir, set_),
            format=format,
            output=output,
            overrides=set_ or [],
            step=step,
            untrained=untrained,
            allow_spec_change=allow_spec_change,
            best=best,
        )
    for path in written:
        typer.echo(printable(f"Wrote {path}"))


@app.command("import")
def import_(
    model: Annotated[Path, typer.Argument(help="A Keras 3 .keras archive.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Spec file to write.")],
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            help="Also write the archive's weights there as a step-0 checkpoint (with the "
            "run's spec.yaml), for predict, evaluate and train.",
        ),
    ] = None,
) -> None:
    """Convert a Keras 3 .keras model (Sequential or Functional) into a spec, reading the
    archive as data: no Keras, no pickle, no code from it is run. Lambda layers, custom
    classes and unsupported layers or arguments are all listed at once, naming the
    layers (exit 2; nothing written). Loss, optimizer and metrics come from the
    archive's compile settings when they are Keras built-ins. To fine-tune, add a
    `data:` section and run `modelspec train` with the same --run-dir."""
    from modelspec.runtime.keras_import.importer import import_keras

    try:
        result = import_keras(model, output, run_dir)
    except SpecError as error:
        _fail(error)
    typer.echo(printable(f"Wrote {result.spec_file}: {result.layers} layers"))
    if result.run_dir is not None:
        typer.echo(printable(f"Wrote checkpoint step 0 to {result.run_dir}"))
    for note in result.notes:
        typer.echo(printable(f"Note: {note}"), err=True)
