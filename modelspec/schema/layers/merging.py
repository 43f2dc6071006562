"""Merge layers: Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract.
They take a list of inputs (`inputs: [a, b, ...]`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.calls import Call, Merge
from modelspec.schema.layers.decode_rules import along
from modelspec.schema.layers.flops_math import per_example, times, total
from modelspec.schema.layers.shape_math import int_tuple, need_min_rank
from modelspec.schema.tensors import FLOAT_DTYPES, LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.merging:"
_ONNX = "modelspec.compiler.layers.onnx.merging:"
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
    """Shared by the element-wise merges (Add, Average, Maximum, Minimum, Multiply,
    Subtract): a list of inputs whose shapes broadcast together."""

    call: ClassVar[Call] = Merge()
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"

    def infer(self, xs: list[TensorType]) -> LayerShape:
        return broadcast(self.type, xs)

    def infer_mask(self, xs: list[TensorType], masks: list[TensorType | None]) -> TensorType | None:
        """Keras's merge rule: the inputs' masks or-ed together, and no mask at all as
        soon as one input is unmasked."""
        return None if any(m is None for m in masks) else masks[0]

    def flops(self, xs: list[TensorType], shape: LayerShape) -> int | None:
        """One operation per output element for each input after the first."""
        return times(per_example(shape.output), max(1, len(xs) - 1))


class Add(_ElementWise):
    """Element-wise sum of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Add"
    onnx: ClassVar[str] = _ONNX + "lower_add"
    type: Literal["Add"]


class Average(_ElementWise):
    """Element-wise mean of its inputs (shapes must match or broadcast). As in Keras, the
    inputs are summed in their common dtype and the sum divided by their number, so the
    output is always float (float32 for integer inputs)."""

    nnx: ClassVar[str] = _NNX + "Average"
    onnx: ClassVar[str] = _ONNX + "lower_average"
    type: Literal["Average"]

    def infer(self, xs: list[TensorType]) -> LayerShape:
        out = broadcast(self.type, xs).output
        return LayerShape(TensorType(out.shape, out.dtype if out.is_float else "float32"))


class Concatenate(LayerSpec):
    """Concatenation along `axis`; all other axes must match."""

    call: ClassVar[Call] = Merge()
    nnx: ClassVar[str] = _NNX + "Concatenate"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_concatenate"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
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

    masking: ClassVar[str] = "keep"

    def infer_mask(self, xs: list[TensorType], masks: list[TensorType | None]) -> TensorType | None:
        """Keras's rule: each mask widened to its input's shape (all True where an input
        is unmasked), concatenated along `axis`, then any() over the last axis."""
        if all(m is None for m in masks):
            return None
        for x, m in zip(xs, masks, strict=True):
            if m is not None and m.rank not in (x.rank - 1, x.rank):
                raise ShapeError(
                    f"Concatenate cannot merge the mask {m} of an input {x}",
                    field="inputs",
                    received=f"mask={m}",
                )
        out = self.infer(xs).output
        return TensorType(out.shape[:-1], "bool")


class Dot(LayerSpec):
    """Dot product of exactly two inputs along one axis of each, per sample (Keras's
    `batch_dot`): the output is the first input's shape without its dot axis, followed
    by the second's without its batch and dot axes; a result with no axis besides the
    batch becomes (batch, 1). E.g. (batch, 5, 3) · (batch, 4, 3) with `axes: 2` gives
    (batch, 5, 4)."""

    call: ClassVar[Call] = Merge(inputs=2)
    nnx: ClassVar[str] = _NNX + "Dot"
    onnx: ClassVar[str] = _ONNX + "lower_dot"
    type: Literal["Dot"]
    axes: int | list[int]
    """The axis to take the dot product along: one int for both inputs, or two ints
    [axis of the first, axis of the second]; negative counts from the end. The two axes
    must have the same size, and neither can be the batch axis 0. Required, as in Keras."""
    normalize: bool = False
    """L2-normalize both inputs along their dot axis first, so that the output is the
    cosine similarity (float inputs only)."""

    def dot_axes(self, xs: list[TensorType]) -> tuple[int, int]:
        """The non-negative dot axis of each input (Keras's rule: an int applies to both,
        negative values count from each input's own end). Axes below -rank are refused
        where Keras's modulo would silently wrap them around to another axis."""
        given = int_tuple(self.axes, 2, "axes")
        out = []
        for which, x, a in zip(("first", "second"), xs, given, strict=True):
            b = a + x.rank if a < 0 else a
            if b == 0:
                raise ShapeError(
                    f"the dot axis of the {which} input is its batch axis 0, which Keras's "
                    "batch_dot cannot reduce over",
                    field="axes",
                    received=f"axes={self.axes}",
                    hint="Use axes >= 1 (or negative axes counting from the end).",
                )
            if not 0 < b < x.rank:
                raise ShapeError(
                    f"axis {a} is out of range for the {which} input {x} (rank {x.rank})",
                    field="axes",
                    received=f"axes={self.axes}",
                )
            out.append(b)
        return out[0], out[1]

    def infer(self, xs: list[TensorType]) -> LayerShape:
        x, y = xs
        for t in xs:
            need_min_rank(t, 2, " (Keras's batch_dot needs an axis besides the batch)")
        a0, a1 = self.dot_axes(xs)
        d0, d1 = x.shape[a0], y.shape[a1]
        if d0 != d1:
            # Keras refuses a variable (null) size against a fixed one too: its build
            # compares the sizes as given.
            raise ShapeError(
                f"the dot axes differ in size: axis {a0} of the first input is "
                f"{'null' if d0 is None else d0}, axis {a1} of the second is "
                f"{'null' if d1 is None else d1}",
                field="inputs",
                hint="Choose `axes` whose sizes match ([axis of the first, axis of the second]).",
            )
        refused = [t.dtype for t in xs if not t.is_float]
        if self.normalize and refused:
            raise ShapeError(
                f"normalize: true needs float inputs (Keras's L2 normalization refuses "
                f"{' and '.join(sorted(set(refused)))})",
                field="normalize",
                received="normalize=True",
            )
        shape = (
            x.shape[0],
            *(d for i, d in enumerate(x.shape) if i not in (0, a0)),
            *(d for i, d in enumerate(y.shape) if i not in (0, a1)),
        )
        if len(shape) == 1:
            shape = (shape[0], 1)
        # Keras's JAX matmul accumulates int8 x int8 into int32.
        dtype = "int32" if {x.dtype, y.dtype} == {"int8"} else result_dtype(xs)
        return LayerShape(TensorType(shape, dtype))

    def flops(self, xs: list[TensorType], shape: LayerShape) -> int | None:
        """2 per output element and dot-axis element; `normalize`: ~3 per input element
        (square, sum, divide)."""
        depth = xs[0].shape[self.dot_axes(xs)[0]]
        norm = total(times(per_example(x), 3) for x in xs) if self.normalize else 0
        return total([times(per_example(shape.output), None if depth is None else 2 * depth), norm])


class Maximum(_ElementWise):
    """Element-wise maximum of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Maximum"
    onnx: ClassVar[str] = _ONNX + "lower_maximum"
    type: Literal["Maximum"]


class Minimum(_ElementWise):
    """Element-wise minimum of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Minimum"
    onnx: ClassVar[str] = _ONNX + "lower_minimum"
    type: Literal["Minimum"]


class Multiply(_ElementWise):
    """Element-wise product of its inputs (shapes must match or broadcast)."""

    nnx: ClassVar[str] = _NNX + "Multiply"
    onnx: ClassVar[str] = _ONNX + "lower_multiply"
    type: Literal["Multiply"]


class Subtract(_ElementWise):
    """Element-wise difference `inputs[0] - inputs[1]` of exactly two inputs (shapes must
    match or broadcast)."""

    call: ClassVar[Call] = Merge(inputs=2)
    nnx: ClassVar[str] = _NNX + "Subtract"
    onnx: ClassVar[str] = _ONNX + "lower_subtract"
    type: Literal["Subtract"]
