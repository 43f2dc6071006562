"""Sections keyed by model output (`loss:`, `loss_weights:`, `metrics:`) must name
outputs that exist: checked with the graph, so `check` refuses what `train` would.

A mistyped key would otherwise be refused only when training starts, or — for
`loss_weights` — silently leave its output at weight 1. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable

from modelspec.errors import Diagnostic, Path, Pos, did_you_mean
from modelspec.schema.spec import Spec


def output_key_errors(
    spec: Spec, outputs: tuple[str, ...], locate: Callable[[Path, bool], Pos]
) -> list[Diagnostic]:
    """One diagnostic per key of `loss`, `loss_weights` or `metrics` that is not a model
    output (for `metrics`: not an output with a loss, when losses are per output)."""
    keyed: list[tuple[str, str, tuple[str, ...]]] = []
    if isinstance(spec.loss, dict):
        keyed += [("loss", k, outputs) for k in spec.loss]
    keyed += [("loss_weights", k, outputs) for k in spec.loss_weights or {}]
    if isinstance(spec.metrics, dict):
        with_loss = tuple(spec.loss) if isinstance(spec.loss, dict) else outputs
        keyed += [("metrics", k, tuple(o for o in with_loss if o in outputs)) for k in spec.metrics]
    return [
        Diagnostic.at(
            locate((section, key), True),
            (section, key),
            f"'{key}' is not a model output" + (" with a loss" if section == "metrics" else ""),
            received=repr(key),
            hint=did_you_mean(key, valid)
            or ("Outputs with a loss: " if section == "metrics" else "Model outputs: ")
            + (", ".join(valid) or "none")
            + ".",
        )
        for section, key, valid in keyed
        if key not in valid
    ]
