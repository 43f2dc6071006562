"""The commands that read a spec without running it: `check`, `summary`, `graph`,
`plot` and `schema` (no JAX import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelspec.cli_common import AllowOutside, SetOption, _fail, _load, app
from modelspec.errors import SpecError, printable


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
