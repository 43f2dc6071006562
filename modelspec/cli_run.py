"""The commands that run a model: `train`, `evaluate` and `predict` (JAX is imported
inside them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelspec.cli_common import (
    AllowOutside,
    AllowSpecChange,
    Best,
    RunDir,
    SetOption,
    _device_memory_errors,
    _fail,
    _load,
    _restored_run,
    _run_dir,
    app,
)
from modelspec.errors import SpecError, printable


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
