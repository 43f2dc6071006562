"""`modelspec generate`: the command line of `runtime/generate.py`.

Registered on the app by `cli.py` importing this module; JAX is
imported only inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelspec.cli_common import (
    AllowOutside,
    AllowSpecChange,
    RunDir,
    SetOption,
    _restored_run,
    _run_dir,
    app,
)
from modelspec.errors import Diagnostic, SpecError, printable


def _prompt_ids(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]; anything else is a usage error (exit 2)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return [int(p) for p in parts if p]
    except ValueError:
        raise SpecError.single(
            Diagnostic(
                "<command line>",
                0,
                0,
                "--prompt-tokens",
                "must be comma-separated integer token ids",
                repr(text),
                "e.g. --prompt-tokens 1,2,3.",
            )
        ) from None


@app.command()
def generate(
    spec: Annotated[Path, typer.Argument(help="Spec file of a causal language model.")],
    prompt_tokens: Annotated[
        str, typer.Option("--prompt-tokens", help="The prompt as token ids: 1,2,3.")
    ],
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", "-n", help="How many tokens to generate at most.")
    ] = 32,
    temperature: Annotated[
        float,
        typer.Option(
            "--temperature",
            help="0: greedy (the most likely token); above 0: sample from "
            "softmax(scores / temperature).",
        ),
    ] = 0.0,
    top_k: Annotated[
        int | None,
        typer.Option("--top-k", help="Sample only among the K most likely tokens."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed of the sampling (default: the spec's seed)."),
    ] = None,
    stop_token: Annotated[
        int | None,
        typer.Option("--stop-token", help="Stop after generating this token id."),
    ] = None,
    run_dir: RunDir = None,
    step: Annotated[
        int | None,
        typer.Option("--step", help="Use this checkpoint step instead of the newest."),
    ] = None,
    untrained: Annotated[
        bool,
        typer.Option(
            "--untrained",
            help="Use fresh weights from the spec's seed; no run or checkpoint needed.",
        ),
    ] = False,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="text: the generated ids on one line (and the text with --as-bytes); "
            'json: {"prompt", "tokens", "step", "stopped"(, "text")}.',
        ),
    ] = "text",
    as_bytes: Annotated[
        bool,
        typer.Option(
            "--as-bytes",
            help="Byte-level model (ids 0..255): also print the tokens decoded as UTF-8.",
        ),
    ] = False,
    set_: SetOption = None,
    allow_spec_change: AllowSpecChange = False,
    allow_outside: AllowOutside = False,
) -> None:
    """Generate tokens after a prompt with a trained causal language model, one jitted
    step per token with a KV cache: greedy at temperature 0, else sampled (from --seed).
    Refuses, naming each layer, a model that cannot generate this way (layers that
    mix sequence positions other than causal self-attention). Names the checkpoint step
    used on stderr, as predict does."""
    if format not in ("text", "json"):
        typer.echo(f"--format: must be 'text' or 'json'. Received: {format!r}.", err=True)
        raise typer.Exit(2)
    from modelspec.runtime.generate import as_text
    from modelspec.runtime.generate import generate as run_generate

    with _restored_run(allow_outside):
        result = run_generate(
            spec,
            _run_dir(spec, run_dir, set_),
            _prompt_ids(prompt_tokens),
            set_ or [],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            seed=seed,
            stop_token=stop_token,
            step=step,
            untrained=untrained,
            allow_spec_change=allow_spec_change,
            as_bytes=as_bytes,
        )
    text = as_text(result.tokens) if as_bytes else None
    if format == "json":
        shown = {
            "prompt": result.prompt,
            "tokens": result.tokens,
            "step": result.step,
            "stopped": result.stopped,
        }
        if text is not None:
            shown["text"] = text
        typer.echo(json.dumps(shown))
        return
    typer.echo(",".join(map(str, result.tokens)))
    if text is not None:
        typer.echo(_terminal_safe(text))


def _terminal_safe(text: str) -> str:
    """Generated text as printed: line breaks and tabs kept, every other control
    character escaped (a model's output must not drive the terminal, as `printable`)."""
    return "\n".join("\t".join(map(printable, line.split("\t"))) for line in text.split("\n"))
