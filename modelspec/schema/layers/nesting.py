"""Nested layer specs: what the wrapper layers (Bidirectional, TimeDistributed) share.

A wrapper's `layer:` field holds a whole layer spec (`{type: LSTM, units: 8}`), validated
by the same discriminated union as `model.layers`. The union is built from the registry
after every family module is imported, so the wrappers annotate the field with the name
`Layer` and `schema/layers/__init__.py` rebuilds them once the union exists.

The nested layer is not a node of the graph: it has no `inputs` (the wrapper feeds it),
its `name` (default: Keras's auto-name, `lstm`) only names its weights, and its errors
are reported at `<wrapper>.layer.<field>`. Pure Python, like all of `modelspec.schema`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError


def auto_name(type_name: str) -> str:
    """Keras's name of the first layer of a type: `LSTM` -> `lstm`, `SimpleRNN` ->
    `simple_rnn` (the same rule as the auto-names of `model.layers`)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type_name).lower()


def nested_name(layer: Any) -> str:
    """The name of a nested layer: its own, or Keras's auto-name."""
    return layer.name or auto_name(layer.type)


def check_nested(layer: Any, field: str) -> None:
    """Refuse what a nested layer cannot have: its own `inputs` (the wrapper feeds it)
    and a `/` in its name (Keras refuses it; it would also split the weight paths)."""
    if layer.inputs is not None:
        raise ShapeError(
            "a wrapped layer takes no `inputs`: the wrapper feeds it",
            field=f"{field}.inputs",
            received=f"{field}.inputs={layer.inputs!r}",
            hint=f"Remove `inputs` from `{field}`; give the wrapper's `inputs` instead.",
        )
    if getattr(layer, "dtype_policy", None) is not None:
        raise ShapeError(
            "a wrapped layer takes the wrapper's dtype policy",
            field=f"{field}.dtype_policy",
            received=f"{field}.dtype_policy={layer.dtype_policy!r}",
            hint=f"Set `dtype_policy` on the wrapper instead of on `{field}`.",
        )
    if layer.name is not None and "/" in layer.name:
        raise ShapeError(
            "a wrapped layer's name cannot contain '/'",
            field=f"{field}.name",
            received=f"{field}.name={layer.name!r}",
        )


def nested_infer(layer: Any, inputs: Any, field: str) -> LayerShape:
    """`layer.infer(inputs)`, with its errors re-positioned into the wrapper's `field`
    (`layer.units`); problems with the incoming tensor stay on the wrapper's `inputs`."""
    try:
        return layer.infer(inputs)
    except ShapeError as exc:
        where = exc.field if exc.field == "inputs" else f"{field}.{exc.field or 'type'}"
        raise ShapeError(
            f"{layer.type} '{nested_name(layer)}' (in `{field}`): {exc.message}",
            field=where,
            received=exc.received,
            hint=exc.hint,
        ) from exc


def weight_prefix(layer: Any, name: str) -> str:
    """Where Keras keeps a nested layer's weights, relative to the wrapper:
    `<name>/` plus the layer's cell scope (`forward_lstm/lstm_cell/`)."""
    scope = getattr(type(layer), "keras_scope", "")
    return f"{name}/{scope}/" if scope else f"{name}/"


def prefixed(shape: LayerShape, prefix: str, trainable: bool) -> tuple[ParamInfo, ...]:
    """A nested layer's variables as the wrapper's: paths under `prefix`, frozen when the
    nested layer says `trainable: false`."""
    return tuple(
        dataclasses.replace(p, path=prefix + p.path, trainable=p.trainable and trainable)
        for p in shape.params
    )


__all__ = [
    "auto_name",
    "check_nested",
    "nested_infer",
    "nested_name",
    "prefixed",
    "weight_prefix",
]
