"""Merge layers: Add, Concatenate, Multiply, Subtract. They take a list of inputs
(`inputs: [a, b, ...]`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.calls import Call, Merge
from modelspec.schema.tensors import FLOAT_DTYPES, LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.merging:"
_INT_ORDER = ("bool", "uint8", "int8", "int32", "int64")


def result_dtype(xs: list[TensorType]) -> str:
    """Keras's merge result dtype: its float32 policy autocasts float16/bfloat16 inputs,
    so any float input gives float32 (float64 if one is float64); integer-only inputs
    keep their common integer type (uint8 with int8 widens to int32: no int16 here)."""
    dtypes = {x.dtype for x in xs}
    if dtypes & set(FLOAT_DTYPES):
        return "float64" if "float64" in dtypes else "float32"
    if {"uint8", "int8"} <= dtypes and not dtypes & {"int32", "int64"}:
        return "int32"
    return max(dtypes, key=_INT_ORDER.index)


def same_rank(layer_type: str, xs: list[TensorType]) -> int:
    """The rank every input of a merge must share (Keras merges never change rank)."""
    rank = xs[0].rank
    if any(x.rank != rank for x in xs):
        raise ShapeError(f"{layer_type} inputs must have the same rank", field="inputs")
    return rank


def broadcast(layer_type: str, xs: list[TensorType]) -> LayerShape:
    """Element-wise merge: same rank, each axis equal or 1 (broadcast), as Keras."""
    rank = same_rank(layer_type, xs)
    out = []
    for axis in range(rank):
        dims = {x.shape[axis] for x in xs} - {None, 1}
        if len(dims) > 1:
            raise ShapeError(
                f"{layer_type} inputs have incompatible shapes (axis {axis}: "
                f"{' vs '.join(str(d) for d in sorted(dims))})",
                field="inputs",
            )
        known = [x.shape[axis] for x in xs if x.shape[axis] is not None]
        out.append(max(known) if len(known) == len(xs) else (dims.pop() if dims else None))
    return LayerShape(TensorType(tuple(out), result_dtype(xs)))


class _ElementWise(LayerSpec):
    """Shared by the element-wise merges (Add, Multiply, Subtract): a list of inputs
    whose shapes broadcast together."""

    call: ClassVar[Call] = Merge()

    def infer(self, xs: list[TensorType]) -> LayerShape:
        return broadcast(self.type, xs)


class Add(_ElementWise):
    """Element-wise sum of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Add"
    type: Literal["Add"]


class Concatenate(LayerSpec):
    """Concatenation along `axis`; all other axes must match."""

    call: ClassVar[Call] = Merge()
    nnx: ClassVar[str] = _NNX + "Concatenate"
    type: Literal["Concatenate"]
    axis: int = -1
    """Axis to concatenate along."""

    def infer(self, xs: list[TensorType]) -> LayerShape:
        rank = same_rank("Concatenate", xs)
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ShapeError(
                f"axis {self.axis} is out of range for rank-{rank} inputs (the "
                "batch axis cannot be concatenated)",
                field="axis",
                received=f"axis={self.axis}",
            )
        out = list(xs[0].shape)
        for i in range(rank):
            dims = [x.shape[i] for x in xs]
            if i == axis:
                out[i] = None if None in dims else sum(dims)
            elif len({d for d in dims if d is not None}) > 1:
                raise ShapeError(
                    f"Concatenate inputs must match on every axis but {self.axis} "
                    f"(axis {i} differs)",
                    field="inputs",
                )
        return LayerShape(TensorType(tuple(out), result_dtype(xs)))


class Multiply(_ElementWise):
    """Element-wise product of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Multiply"
    type: Literal["Multiply"]


class Subtract(_ElementWise):
    """Element-wise difference `inputs[0] - inputs[1]` of exactly two inputs (shapes must
    match or broadcast)."""

    call: ClassVar[Call] = Merge(inputs=2)
    nnx: ClassVar[str] = _NNX + "Subtract"
    type: Literal["Subtract"]
