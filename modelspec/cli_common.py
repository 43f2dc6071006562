"""What the `modelspec` commands share: the typer app, the repeated options, and how
user errors are printed (`file:line:col: path: message`, exit code 2).

Imports only typer and modelspec's light modules: `--help` must not import JAX.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from modelspec.errors import Diagnostic, SpecError

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
