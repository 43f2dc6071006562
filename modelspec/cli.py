"""The `modelspec` command line.

Light commands (`--help`, `check`, `summary`, `schema`) import only pydantic, yaml,
typer and rich; JAX, Flax, optax and orbax are imported inside the commands that run
a model. User errors print as `file:line:col: path: message` and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelspec.errors import SpecError

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
    typer.Option("--set", help="Override a field: path.to.field=value (value parsed as YAML). "
                 "Repeatable. Lists are indexed by position or layer name: "
                 "model.layers.conv1.filters=64."),
]


def _fail(error: SpecError) -> None:
    for diag in error.diagnostics:
        typer.echo(diag.format(), err=True)
    n = len(error.diagnostics)
    typer.echo(f"{n} error{'s' if n != 1 else ''}.", err=True)
    raise typer.Exit(2)


def _load(spec: Path, overrides: list[str] | None):
    from modelspec.compiler.load import load

    return load(spec, overrides or [])


@app.command()
def check(
    specs: Annotated[list[Path], typer.Argument(help="Spec files to validate.")],
    set_: SetOption = None,
) -> None:
    """Validate specs and infer every shape (no JAX needed). One line per spec; exit 2 on
    any error."""
    from modelspec.compiler.summary import summarize
    from modelspec.compiler.types import format_shape

    failed = False
    for path in specs:
        try:
            spec = _load(path, set_)
        except SpecError as error:
            failed = True
            for diag in error.diagnostics:
                typer.echo(diag.format(), err=True)
            typer.echo(f"FAIL {path}: {len(error.diagnostics)} error(s)")
            continue
        info = summarize(spec)
        outs = ", ".join(f"{layer['name']} {format_shape(tuple(layer['output_shape']))}"
                         for layer in info["layers"] if layer["name"] in info["outputs"])
        typer.echo(f"ok   {path}: {spec.name}: {len(info['layers']) - len(info['inputs'])} layers, "
                   f"{info['total_params']:,} params -> {outs}")
    if failed:
        raise typer.Exit(2)


@app.command()
def summary(
    spec: Annotated[Path, typer.Argument(help="Spec file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    set_: SetOption = None,
) -> None:
    """Print the model's layers, output shapes and parameter counts (Keras counting:
    batch statistics are non-trainable). No JAX needed."""
    from modelspec.compiler.summary import render_table, summarize

    if format not in ("table", "json"):
        typer.echo(f"--format: must be 'table' or 'json'. Received: {format!r}.", err=True)
        raise typer.Exit(2)
    try:
        loaded = _load(spec, set_)
    except SpecError as error:
        _fail(error)
    info = summarize(loaded)
    if format == "json":
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console

    table, totals = render_table(info)
    console = Console()
    needed = sum(max(len(c) for c in col.cells) if col.cells else 0 for col in table.columns)
    console = Console(width=max(console.width, needed + 3 * len(table.columns) + 1))
    console.print(table)
    for line in totals:
        console.print(line)


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


def main() -> None:
    try:
        app()
    except SpecError as error:  # a user error that escaped a command
        for diag in error.diagnostics:
            print(diag.format(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
