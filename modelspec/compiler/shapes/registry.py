"""The registry of shape rules: layer type -> function(layer, inputs) -> LayerShape.

A rule gets the layer spec and its input TensorType(s) (one, a list, or a dict of named
arguments, per the layer's call signature) and returns the output type and the list of
variables the layer will own. Rules raise ShapeError for impossible inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelspec.compiler.types import Dim, LayerShape, ShapeError, TensorType

Rule = Callable[[Any, Any], LayerShape]
RULES: dict[str, Rule] = {}


def rule(*types: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for t in types:
            RULES[t] = fn
        return fn

    return register


def as_tuple(value: int | list[int], n: int, field: str) -> tuple[int, ...]:
    """Keras's int-or-tuple arguments (`kernel_size: 3` == `[3, 3]`)."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ShapeError(f"needs {n} value(s)", field=field, received=f"{field}={list(value)}")
    return tuple(value)


def need_rank(x: TensorType, rank: int | tuple[int, ...], what: str) -> None:
    ranks = (rank,) if isinstance(rank, int) else rank
    if x.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(
            f"expects rank-{want} input {what}, got rank {x.rank}",
            field="inputs",
            received=str(x),
            hint="Insert a Reshape (or Flatten) layer to get that rank.",
        )


def need_min_rank(x: TensorType, rank: int, what: str = "") -> None:
    if x.rank < rank:
        raise ShapeError(
            f"expects input of rank >= {rank}{what}, got rank {x.rank}",
            field="inputs",
            received=str(x),
        )


def known_last(x: TensorType) -> int:
    if x.shape[-1] is None:
        raise ShapeError(
            "the last axis of the input must be known (not null)", field="inputs", received=str(x)
        )
    return x.shape[-1]


def float_out(x: TensorType) -> str:
    """Layers compute in float32 (Keras's default dtype policy) unless fed a wider float."""
    return x.dtype if x.dtype in ("float64",) else "float32"


def mul_dims(dims: tuple[Dim, ...]) -> Dim:
    out = 1
    for d in dims:
        if d is None:
            return None
        out *= d
    return out
