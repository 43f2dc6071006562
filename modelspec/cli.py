"""The `modelspec` command line.

Light commands (`--help`, `check`, `summary`, `schema`) import only pydantic, yaml,
typer and rich; JAX, Flax, optax and orbax are imported inside the commands that run
a model. User errors print as `file:line:col: path: message` and exit with code 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from modelspec.errors import Diagnostic, SpecError, printable

app = typer.Typer(
    name="modelspec",
    help="Declarative deep learning: Keras-vocabulary YAML specs compiled to jitted JAX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field: path.to.field=value (value parsed as YAML). "
        "Repeatable. Lists are indexed by position or layer name: "
        "model.layers.conv1.filters=64.",
    ),
]


AllowOutside = Annotated[
    bool,
    typer.Option(
        "--allow-outside",
        help="Let `extends` read base specs, and `image_folder` sources read images, outside "
        "the spec's folder (or its repository). Base specs must still be regular files of at "
        "most 512 KiB.",
    ),
]


def _fail(error: SpecError) -> None:
    for diag in error.diagnostics:
        typer.echo(diag.format(), err=True)
    n = len(error.diagnostics)
    typer.echo(f"{n} error{'s' if n != 1 else ''}.", err=True)
    raise typer.Exit(2)


def _load(spec: Path, overrides: list[str] | None, allow_outside: bool = False):
    from modelspec.compiler.extends import extends_anywhere
    from modelspec.compiler.load import load

    with extends_anywhere(allow_outside):
        return load(spec, overrides or [])


def _output_shape(info: dict, ref: str) -> tuple:
    """The shape of one model output in a summary: a layer's (or input's) output, or one
    tensor of a multi-output layer (`lstm.1`), which has no row of its own."""
    from modelspec.compiler.graph import split_ref

    layers = {layer["name"]: layer for layer in info["layers"]}
    if ref in layers:
        return tuple(layers[ref]["output_shape"])
    base, index = split_ref(ref)
    return tuple(layers[base]["output_shapes"][index])


@app.command()
def check(
    specs: Annotated[list[Path], typer.Argument(help="Spec files to validate.")],
    set_: SetOption = None,
    allow_outside: AllowOutside = False,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="text: errors as file:line:col lines on stderr; github: errors as GitHub "
            "Actions annotations (::error file=...,line=...,col=...::...) on stdout; json: "
            'one object {"ok", "errors": [{file, line, col, path, message, received, hint}]} '
            "on stdout, nothing else.",
        ),
    ] = "text",
) -> None:
    """Validate specs and infer every shape (no JAX needed). One line per spec; exit 2 on
    any error."""
    from modelspec.compiler.summary import summarize
    from modelspec.observe.annotations import FORMATS, github_annotation, json_report
    from modelspec.schema.tensors import format_shape

    if format not in FORMATS:
        typer.echo(
            f"--format: must be one of {', '.join(FORMATS)}. Received: {format!r}.", err=True
        )
        raise typer.Exit(2)
    failed, found = False, []
    for path in specs:
        try:
            spec = _load(path, set_, allow_outside)
        except SpecError as error:
            failed = True
            found += error.diagnostics
            if format == "json":
                continue
            for diag in error.diagnostics:
                if format == "github":
                    typer.echo(github_annotation(diag))
                else:
                    typer.echo(diag.format(), err=True)
            typer.echo(printable(f"FAIL {path}: {len(error.diagnostics)} error(s)"))
            continue
        if format == "json":
            continue
        info = summarize(spec)
        outs = ", ".join(
            f"{ref} {format_shape(_output_shape(info, ref))}" for ref in info["outputs"]
        )
        typer.echo(
            printable(
                f"ok   {path}: {spec.name}: {len(info['layers']) - len(info['inputs'])} layers, "
                f"{info['total_params']:,} params -> {outs}"
            )
        )
    if format == "json":
        typer.echo(json.dumps(json_report(found), indent=2))
    if failed:
        raise typer.Exit(2)


@app.command()
def summary(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    mesh: Annotated[
        str | None,
        typer.Option(
            "--mesh",
            help="Show the sharding plan on a mesh, e.g. data=2,fsdp=2,tensor=2: each "
            "parameter's partition spec and per-device memory (no devices needed).",
        ),
    ] = None,
    set_: SetOption = None,
    allow_outside: AllowOutside = False,
) -> None:
    """Print the model's layers, output shapes, parameter counts (Keras counting:
    batch statistics are non-trainable) and forward FLOPs per example, with the
    training memory per device split into parameters, gradients, optimizer state and
    activations. No JAX needed."""
    from modelspec.compiler.summary import summarize
    from modelspec.summary_table import render_sharding, render_table

    if format not in ("table", "json"):
        typer.echo(f"--format: must be 'table' or 'json'. Received: {format!r}.", err=True)
        raise typer.Exit(2)
    try:
        loaded = _load(spec, set_, allow_outside)
    except SpecError as error:
        _fail(error)
    info = summarize(loaded)
    if mesh is not None:
        from modelspec.compiler.sharding.plan import parse_mesh, plan_for

        try:
            sizes = parse_mesh(mesh)
            plan = plan_for(loaded, sizes)
        except ValueError as exc:
            typer.echo(f"--mesh: {exc}.", err=True)
            raise typer.Exit(2) from None
        except SpecError as exc:
            _fail(exc)
        info["sharding"] = plan.as_dict(loaded.optimizer)
    if format == "json":
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console

    if mesh is not None:
        table, totals = render_sharding(info["sharding"])
    else:
        table, totals = render_table(info)
    console = Console()
    needed = sum(max(len(c) for c in col.cells) if col.cells else 0 for col in table.columns)
    console = Console(width=max(console.width, needed + 3 * len(table.columns) + 1))
    console.print(table)
    for line in totals:
        console.print(line)


@app.command()
def graph(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write: .svg or .png.")],
    expand_blocks: Annotated[
        bool,
        typer.Option(
            "--expand-blocks/--collapse-blocks",
            help="Draw every layer of the spec's block uses, or one box per use (default).",
        ),
    ] = False,
    renderer: Annotated[
        str,
        typer.Option(
            "--renderer",
            help="auto (graphviz's `dot` when on PATH, else built-in), graphviz, or builtin "
            "(a layered layout written as SVG, or as PNG with matplotlib).",
        ),
    ] = "auto",
    set_: SetOption = None,
    allow_outside: AllowOutside = False,
) -> None:
    """Draw the layer graph with output shapes and parameter counts (like Keras's
    plot_model). No JAX needed."""
    from modelspec.observe.graph_draw import RENDERERS, GraphError, render
    from modelspec.observe.graph_view import build_view

    if renderer not in RENDERERS:
        typer.echo(
            f"--renderer: must be one of {', '.join(RENDERERS)}. Received: {renderer!r}.",
            err=True,
        )
        raise typer.Exit(2)
    try:
        loaded = _load(spec, set_, allow_outside)
    except SpecError as error:
        _fail(error)
    try:
        written = render(build_view(loaded, expand_blocks=expand_blocks), output, renderer=renderer)
    except GraphError as exc:
        typer.echo(printable(str(exc)), err=True)
        raise typer.Exit(2) from None
    typer.echo(printable(f"Wrote {written}"))


@app.command()
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (with metrics.jsonl).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write.")] = Path(
        "curves.png"
    ),
) -> None:
    """Plot loss and metrics per epoch (training solid, validation dashed; several runs
    overlaid, one panel per quantity) as a PNG. Needs matplotlib: pip install
    'modelspec[plot]'."""
    from modelspec.observe.curves import PlotError, plot_runs

    try:
        written = plot_runs(run_dirs, output)
    except PlotError as exc:
        typer.echo(printable(str(exc)), err=True)
        raise typer.Exit(2) from None
    typer.echo(printable(f"Wrote {written}"))


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of spec files (for editors: add
    `# yaml-language-server: $schema=modelspec.schema.json` to a spec)."""
    from modelspec.compiler.jsonschema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


RunDir = Annotated[
    Path | None, typer.Option("--run-dir", help="Run directory (default: runs/<name>).")
]
Best = Annotated[
    bool,
    typer.Option(
        "--best",
        help="Use the best checkpoint that ModelCheckpoint(save_best_only: true) kept in "
        "<run dir>/best/, instead of the newest checkpoint.",
    ),
]
AllowSpecChange = Annotated[
    bool,
    typer.Option(
        "--allow-spec-change",
        help="Use the run's weights even though the spec's model: section differs from the "
        "run directory's spec.yaml (refused by default: outputs would silently change).",
    ),
]


@app.command()
def train(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    run_dir: RunDir = None,
    set_: SetOption = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore existing checkpoints and start over.")
    ] = False,
    coordinator: Annotated[
        str | None,
        typer.Option(
            "--coordinator",
            help="Multi-process run: HOST:PORT of process 0 (also "
            "MODELSPEC_COORDINATOR). SLURM and Cloud TPU are detected automatically.",
        ),
    ] = None,
    num_processes: Annotated[
        int | None,
        typer.Option("--num-processes", help="Number of processes (also MODELSPEC_NUM_PROCESSES)."),
    ] = None,
    process_id: Annotated[
        int | None,
        typer.Option("--process-id", help="This process's index (also MODELSPEC_PROCESS_ID)."),
    ] = None,
    allow_outside: AllowOutside = False,
) -> None:
    """Train a spec. Writes spec.yaml, metrics.jsonl, TensorBoard events and checkpoints
    to the run directory; running the same command again resumes exactly where the
    last checkpoint stopped. The `distribution:` section (or --set distribution.mesh.X=N)
    shards the run over all devices, and across processes with --coordinator.

    Exit codes: 0 done; 2 an error in the spec, data or run directory (including a run
    directory in use by another train, and a full disk); 3 stopped by TerminateOnNaN
    (the last checkpoint with a finite loss and weights is kept); 130 / 143 interrupted
    by Ctrl-C / SIGTERM (rerun the same command to resume); 4 in a multi-process run,
    another process was lost (named, with the checkpoint to resume from)."""
    from modelspec.compiler.memory import spec_limit_error

    try:  # spec errors and absurd sizes before JAX is imported (seconds on small hosts)
        too_large = spec_limit_error(_load(spec, set_, allow_outside))
    except SpecError as error:
        _fail(error)
    if too_large is not None:
        _fail(SpecError([too_large]))

    from modelspec.compiler.extends import extends_anywhere
    from modelspec.compiler.sharding.mesh import (
        HEARTBEAT_TIMEOUT_S,
        initialize_processes,
        is_main_process,
    )
    from modelspec.runtime.interrupt import TrainingInterrupted
    from modelspec.runtime.peers import watching_peers
    from modelspec.runtime.trainer import train as run_training

    try:
        initialize_processes(coordinator, num_processes, process_id)
        with (
            watching_peers(HEARTBEAT_TIMEOUT_S),  # a dead peer: a message, exit 4
            extends_anywhere(allow_outside),
            _device_memory_errors(),
        ):
            history = run_training(spec, run_dir, set_ or [], restart=restart)
    except SpecError as error:
        _fail(error)
    except TrainingInterrupted as stopped:
        typer.echo(str(stopped), err=True)
        raise typer.Exit(stopped.exit_code) from None
    s = history.summary
    if not is_main_process():
        if s.get("stopped_on_nan"):
            raise typer.Exit(3)
        return
    if s.get("final"):
        final = {k: v for k, v in s["final"].items() if k not in ("epoch", "step")}
        typer.echo(
            f"Done in {s['wall_seconds']:.1f}s ({s['steps_per_second'] or 0:.1f} steps/s). "
            f"Best epoch {s['best_epoch']} by {s['monitor']} = {s['best']:.4f}."
        )
        typer.echo("Final: " + " - ".join(f"{k}: {v:.4f}" for k, v in final.items()))
    typer.echo(f"Run directory: {history.run_dir}")
    if s.get("stopped_on_nan"):
        typer.echo("Stopped by TerminateOnNaN (exit code 3).", err=True)
        raise typer.Exit(3)


@app.command()
def evaluate(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    run_dir: RunDir = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help=".npz with arrays named after the "
            "model inputs and outputs (default: the spec's "
            "validation data).",
        ),
    ] = None,
    set_: SetOption = None,
    best: Best = False,
    allow_spec_change: AllowSpecChange = False,
    allow_outside: AllowOutside = False,
) -> None:
    """Loss and metrics of a run's latest checkpoint (inference mode). Names the
    checkpoint step and the data (the spec's validation split, or --data) on stderr;
    refuses a damaged checkpoint and a model that differs from the run's spec.yaml."""
    from modelspec.runtime.inference import evaluate as run_eval

    with _restored_run(allow_outside):
        results = run_eval(
            spec,
            _run_dir(spec, run_dir, set_),
            set_ or [],
            data=data,
            allow_spec_change=allow_spec_change,
            best=best,
        )
    typer.echo(json.dumps(results))


@app.command()
def predict(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    input: Annotated[
        list[Path],
        typer.Option(
            "--input",
            help=".npz with arrays named after the model inputs; or image files and "
            "folders (repeat --input), read like the spec's image_folder source; or, "
            "for a model reading text, .txt files and folders (one text per file).",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", help=".npz to write, arrays named after the model outputs.")
    ],
    run_dir: RunDir = None,
    set_: SetOption = None,
    best: Best = False,
    allow_spec_change: AllowSpecChange = False,
    allow_outside: AllowOutside = False,
) -> None:
    """Run a trained model on new inputs (batched, jitted) and save its outputs. Names
    the checkpoint step used on stderr; refuses a damaged checkpoint and a model that
    differs from the run's spec.yaml. A run trained on an image_folder or text_folder
    source (or on string labels) also prints one line per input: name, class name,
    probability."""
    from modelspec.runtime.data.image_folder import prediction_lines
    from modelspec.runtime.inference import input_names, output_file
    from modelspec.runtime.inference import predict as run_predict

    directory = _run_dir(spec, run_dir, set_)
    with _restored_run(allow_outside):
        outputs = run_predict(
            spec,
            directory,
            input,
            output,
            set_ or [],
            allow_spec_change=allow_spec_change,
            best=best,
        )
    n = len(next(iter(outputs.values())))
    names = input_names(spec, input, set_ or [], n)
    for line in prediction_lines(directory, outputs, names):
        typer.echo(printable(line))
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items())
    typer.echo(f"Wrote {output_file(output)}: {shapes}")


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


@contextlib.contextmanager
def _restored_run(allow_outside: bool) -> Iterator[None]:
    """What evaluate and predict share around the work on a restored run: `extends`
    kept inside the spec's folder unless --allow-outside, XLA's out-of-memory error as a
    user error, and every user error printed, exit code 2."""
    from modelspec.compiler.extends import extends_anywhere

    try:
        with extends_anywhere(allow_outside), _device_memory_errors():
            yield
    except SpecError as error:
        _fail(error)


@contextlib.contextmanager
def _device_memory_errors() -> Iterator[None]:
    """XLA's out-of-memory error (a long runtime traceback) as one user error. The
    pre-allocation estimate refuses most models that cannot fit; this catches the rest
    (XLA's temporaries are not in the estimate)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - only RESOURCE_EXHAUSTED is handled
        if "RESOURCE_EXHAUSTED" not in str(exc) or isinstance(exc, SpecError):
            raise
        detail = str(exc).strip().splitlines()[0][:300]
        raise SpecError.single(
            Diagnostic(
                "<devices>",
                0,
                0,
                "memory",
                f"the devices ran out of memory ({detail})",
                hint="Lower data.batch_size, shrink the largest layers, or shard parameters "
                "over more devices (distribution.mesh with an `fsdp` axis).",
            )
        ) from None


def _run_dir(spec: Path, run_dir: Path | None, overrides: list[str] | None) -> Path:
    if run_dir is not None:
        return run_dir
    try:
        return Path("runs") / _load(spec, overrides).name
    except SpecError as error:
        _fail(error)


import modelspec.cli_generate  # noqa: E402, F401  (registers `generate`; it uses the above)


def _exit_at_once(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM outside the training loop (importing JAX, loading data, compiling):
    nothing is being written, so exit at once with a word — raising KeyboardInterrupt
    inside JAX's start-up can leave it half-initialised (tracebacks, even a crash at
    exit). The training loop installs its own handlers (stop at a step boundary)."""
    name = signal.Signals(signum).name
    print(f"{name}: interrupted (no checkpoint was being written).", file=sys.stderr)
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_at_once)
    try:
        app()
    except SpecError as error:  # a user error that escaped a command
        for diag in error.diagnostics:
            print(diag.format(), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (e.g. while compiling)
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
