"""Feature preprocessing layers (Keras's numerical and categorical preprocessing):
Normalization, Discretization, CategoryEncoding.

Normalization and Discretization have state Keras learns with `adapt()`: the
statistics or bin boundaries of the training data. When the spec gives that state
(`mean` and `variance`, `bin_boundaries`) it is a constant of the layer. When it does
not, the layer declares it as variables of the collection "adapted" (non-trainable:
kept in the checkpoint's frozen weights, never touched by the optimizer), and a fresh
training run computes them on the host from the training split before step 1, with the
function named by the spec class's `adapter` (`runtime/adapters.py`, Keras's algorithm).
A resumed run, `evaluate` and `predict` read them from the checkpoint and never adapt.
The layer's input must then be computable from the model inputs by layers without
weights (checked with the graph: `compiler/adapt_inputs.py`).

Inputs always carry the batch axis first. Keras's `sparse` outputs are not offered.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveFloat, PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.decode_rules import along
from modelspec.schema.layers.shape_math import need_min_rank, normalize_axes
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.features:"
_ONNX = "modelspec.compiler.layers.onnx.features:"
_ADAPT = "modelspec.runtime.adapters:"

Floats = float | list[float] | list[list[float]]
"""A number, or a (nested) list of numbers, broadcast to the shape of the kept axes."""
EncodeMode = Literal["int", "one_hot", "multi_hot", "count"]
"""Keras's `output_mode` of the layers that encode integer indices."""


def array_shape(value: Floats) -> tuple[int, ...]:
    """numpy's `np.shape` of a number or a (nested) list, or ValueError when ragged."""
    if not isinstance(value, list):
        return ()
    inner = {array_shape(v) for v in value}
    if len(inner) > 1:
        raise ValueError("ragged")
    return (len(value), *next(iter(inner), ()))


def encoded_shape(x: TensorType, mode: str, depth: int) -> TensorType:
    """The output of Keras's `encode_categorical_inputs` (int32 indices for `int`,
    float32 otherwise). `one_hot` adds a `depth` axis (replacing a last axis of size 1);
    `multi_hot` and `count` reduce Keras's axis 1, which is the batch axis for inputs of
    rank 1: those are refused rather than mixing samples."""
    if mode == "int":
        return TensorType(x.shape, "int32")
    if mode == "one_hot":
        keep = x.shape[:-1] if x.rank > 1 and x.shape[-1] == 1 else x.shape
        return TensorType((*keep, depth), "float32")
    if x.rank < 2:
        raise ShapeError(
            f"output_mode '{mode}' reduces over axis 1, which for input {x} is the batch "
            "axis (Keras would mix the samples of a batch)",
            field="inputs",
            received=f"input shape {x}",
            hint="Give the input a features axis, e.g. shape [1].",
        )
    return TensorType((x.shape[0], *x.shape[2:], depth), "float32")


class Normalization(LayerSpec):
    """Shifts and scales the input to mean 0 and variance 1: `(x - mean) / sqrt(var)`
    (the square root floored at 1e-7), with one mean and variance per index of the
    kept `axis`. Without `mean` and `variance` they are adapted: computed from the
    training split before the first step (Keras's `adapt`), and saved with the
    checkpoint. Output float32."""

    nnx: ClassVar[str] = _NNX + "Normalization"
    onnx: ClassVar[str] = _ONNX + "lower_normalization"
    adapter: ClassVar[str] = _ADAPT + "normalization"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["Normalization"]
    axis: int | list[int] | None = -1
    """The axis or axes that keep a separate mean and variance per index (known sizes,
    not the batch axis); `null`: one scalar mean and variance for all elements."""
    mean: Floats | None = None
    """The mean, broadcast to the kept axes' shape (aligned from the right); set
    together with `variance`. Omitted: adapted from the training data."""
    variance: Floats | None = None
    """The variance, same shape as `mean`."""
    invert: bool = False
    """Apply the inverse: `mean + x * sqrt(var)`, turning normalized values back."""

    def kept_axes(self, x: TensorType) -> tuple[int, ...]:
        """Keras's `_keep_axis`: the kept axes of `x`, sorted, non-negative."""
        if self.axis is None:
            return ()
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        kept = normalize_axes(axes, x)
        if len(kept) != len(axes):
            raise ShapeError(
                "lists the same axis twice", field="axis", received=f"axis={self.axis}"
            )
        return kept

    def constants(self, x: TensorType) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(shape of `mean` as written, the broadcast shape over `x`), checked as Keras's
        constructor and `build` check them; only with explicit `mean` and `variance`."""
        kept = self.kept_axes(x)
        broadcast = tuple(x.shape[d] if d in kept else 1 for d in range(x.rank))
        shapes = {}
        for field in ("mean", "variance"):
            try:
                shapes[field] = array_shape(getattr(self, field))
            except ValueError:
                raise ShapeError(
                    "must be a number or a rectangular list", field=field, received=field
                ) from None
        shape = shapes["mean"]
        if shapes["variance"] != shape:
            raise ShapeError(
                "`mean` and `variance` must have the same shape",
                field="variance",
                received=f"mean shape {shape} and variance shape {shapes['variance']}",
            )
        if len(shape) > len(kept):
            raise ShapeError(
                f"the rank of `mean` must be at most the number of kept axes ({len(kept)})",
                field="mean",
                received=f"mean shape {shape} for axis={self.axis}",
            )
        for size, d in zip(reversed(shape), reversed(kept), strict=False):
            if size not in (1, x.shape[d]):
                raise ShapeError(
                    f"cannot be broadcast to the kept axes' shape "
                    f"{tuple(x.shape[k] for k in kept)}",
                    field="mean",
                    received=f"mean shape {shape}",
                )
        return shape, broadcast

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 1)
        if (self.mean is None) != (self.variance is None):
            field = "mean" if self.variance is None else "variance"  # the one written
            raise ShapeError(
                "`mean` and `variance` must be set together (or both left out, to adapt "
                "them from the data)",
                field=field,
                received=f"mean={self.mean} and variance={self.variance}",
            )
        out = TensorType(x.shape, "float32")
        if self.mean is not None:
            self.constants(x)
            return LayerShape(out)
        kept = self.kept_axes(x)
        shape = tuple(x.shape[d] for d in kept)
        axes = (None,) * len(shape)
        adapted = dict(collection="adapted", trainable=False)
        params = (
            ParamInfo("mean", shape, axes, **adapted),
            ParamInfo("variance", shape, axes, **adapted),
            ParamInfo("count", (), (), **adapted),  # Keras's legacy weight, always 0
        )
        return LayerShape(out, params)


class Discretization(LayerSpec):
    """Buckets numbers by `bin_boundaries`: index i where boundaries[i-1] <= x <
    boundaries[i] (`jnp.digitize`), then encoded by `output_mode`. With `num_bins`
    instead, the boundaries are adapted: Keras's approximate quantiles of the training
    split (within `epsilon`), computed before the first step and saved with the
    checkpoint. The boundaries are not a Keras weight, so Keras counts no parameters
    where the summary here shows `num_bins - 1`."""

    nnx: ClassVar[str] = _NNX + "Discretization"
    onnx: ClassVar[str] = _ONNX + "lower_discretization"
    adapter: ClassVar[str] = _ADAPT + "discretization"
    untracked_state: ClassVar[tuple[str, ...]] = ("bin_boundaries",)
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["Discretization"]
    bin_boundaries: list[float] | None = Field(None, min_length=1)
    """Sorted boundaries: n boundaries make n + 1 buckets. Give these or `num_bins`."""
    num_bins: PositiveInt | None = None
    """Number of buckets to adapt from the training data (instead of `bin_boundaries`)."""
    epsilon: PositiveFloat = 0.01
    """Error tolerance of the adapted quantiles (about 1 / epsilon summary points)."""
    output_mode: EncodeMode = "int"
    """`int`: the bucket index (int32); `one_hot`: one vector per value; `multi_hot`:
    1 for each bucket present along axis 1; `count`: how often each bucket occurs."""

    @property
    def depth(self) -> int:
        """Number of buckets."""
        if self.bin_boundaries is not None:
            return len(self.bin_boundaries) + 1
        return int(self.num_bins or 0)

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 1)
        if self.bin_boundaries is not None and self.num_bins is not None:
            raise ShapeError(
                "give either `bin_boundaries` or `num_bins`, not both",
                field="num_bins",
                received=f"num_bins={self.num_bins} and bin_boundaries={self.bin_boundaries}",
            )
        if self.bin_boundaries is None and self.num_bins is None:
            raise ShapeError(
                "needs `bin_boundaries`, or `num_bins` to adapt them from the data",
                field="num_bins",
                received="neither",
            )
        bounds = self.bin_boundaries
        if bounds is not None and any(b > a for a, b in zip(bounds[1:], bounds, strict=False)):
            raise ShapeError(
                "must be sorted in increasing order (digitize needs monotonic boundaries)",
                field="bin_boundaries",
                received=f"bin_boundaries={bounds}",
            )
        out = encoded_shape(x, self.output_mode, self.depth)
        if bounds is not None:
            return LayerShape(out)
        size = self.depth - 1
        info = ParamInfo("bin_boundaries", (size,), (None,), "adapted", trainable=False)
        return LayerShape(out, (info,))


class CategoryEncoding(LayerSpec):
    """Encodes integer token indices in [0, num_tokens) as vectors of `num_tokens`
    (values outside that range encode as zeros). Output float32."""

    nnx: ClassVar[str] = _NNX + "CategoryEncoding"
    onnx: ClassVar[str] = _ONNX + "lower_category_encoding"
    type: Literal["CategoryEncoding"]
    num_tokens: PositiveInt
    """Number of tokens: the length of the output vectors."""
    output_mode: Literal["multi_hot", "one_hot", "count", "binary"] = "multi_hot"
    """`one_hot`: one vector per index (a last axis of size 1 is replaced); `multi_hot`
    (`binary`, Keras's older name): 1 for each token present along axis 1; `count`:
    how often each token occurs along axis 1."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 1)
        mode = "multi_hot" if self.output_mode == "binary" else self.output_mode
        if mode != "one_hot" and x.rank > 2:
            raise ShapeError(
                f"output_mode '{self.output_mode}' takes inputs (batch, tokens): for rank "
                f"{x.rank} Keras declares shape {(*x.shape[:-1], self.num_tokens)} but "
                f"computes {(x.shape[0], *x.shape[2:], self.num_tokens)}",
                field="inputs",
                received=f"input shape {x}",
                hint="Reshape the tokens to (batch, tokens) first.",
            )
        return LayerShape(encoded_shape(x, mode, self.num_tokens))
