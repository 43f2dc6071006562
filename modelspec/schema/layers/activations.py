"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras's
`keras/src/layers/activations/`).

They keep the input's shape. The output dtype follows Keras exactly, which is not always
float32: like every Keras layer they autocast float inputs to float32 (a float16 input
gives float32) but pass int and bool inputs through unchanged, and then the activation's
own arithmetic decides. A plain ReLU of an int tensor stays int; a negative slope, ELU's
exponential, PReLU's float weight and Softmax make it float32. Bool inputs are refused
where Keras fails on them (a negation, a subtraction).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.decode_rules import along, shared_along_steps
from modelspec.schema.layers.shape_math import float_out
from modelspec.schema.regularizers import AlphaPenalties
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.activations:"
_ONNX = "modelspec.compiler.layers.onnx.activations:"

NonNegativeFloat = Annotated[float, Field(ge=0)]


def _refuse_bool(layer: str, x: TensorType, why: str) -> None:
    """Keras raises a TypeError on bool inputs where the layer negates or subtracts them;
    here the spec is refused before anything is built."""
    if x.dtype == "bool":
        raise ShapeError(
            f"{layer} cannot take a bool input: {why}",
            field="inputs",
            received="dtype=bool",
            hint="Declare the input with `dtype: int32` or `dtype: float32`.",
        )


class ReLU(LayerSpec):
    """Rectified linear unit with Keras's options: `max_value` if x >= max_value, x if
    threshold <= x < max_value, negative_slope * (x - threshold) otherwise.

    With int inputs Keras computes in the input's integer type unless a negative slope
    (or max_value 6, its relu6 shortcut) makes the result float32, and casts
    `threshold` and `max_value` to that integer type (2.5 acts as 2); this layer does the
    same.
    """

    nnx: ClassVar[str] = _NNX + "ReLU"
    onnx: ClassVar[str] = _ONNX + "lower_relu"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["ReLU"]
    max_value: NonNegativeFloat | None = None
    """Largest output value (>= 0); null for no limit."""
    negative_slope: NonNegativeFloat = 0.0
    """Slope (>= 0) below the threshold; 0 gives the plain ReLU."""
    threshold: NonNegativeFloat = 0.0
    """Inputs at or below this value (>= 0) are set to zero (or follow the negative slope)."""

    def infer(self, x: TensorType) -> LayerShape:
        if x.is_float:
            dtype = float_out(x)
        elif self.negative_slope != 0:
            if self.max_value is not None or self.threshold != 0:
                _refuse_bool("ReLU", x, "a negative_slope with max_value or threshold negates it")
            dtype = "float32"
        elif self.threshold == 0 and self.max_value == 6:
            dtype = "float32"  # Keras's relu6 shortcut computes in float
        else:
            dtype = "int32" if x.dtype == "bool" else x.dtype
        return LayerShape(TensorType(x.shape, dtype))


class LeakyReLU(LayerSpec):
    """Leaky rectified linear unit: x for x >= 0, negative_slope * x otherwise.

    Keras's deprecated `alpha` spelling of `negative_slope` is not accepted (Keras 3 warns
    and renames it); write `negative_slope`.
    """

    nnx: ClassVar[str] = _NNX + "LeakyReLU"
    onnx: ClassVar[str] = _ONNX + "lower_leaky_relu"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["LeakyReLU"]
    negative_slope: NonNegativeFloat = 0.3
    """Slope (>= 0) for negative inputs. Keras 3's default here is 0.3, while the
    `leaky_relu` activation function's default is 0.2."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class PReLU(LayerSpec, AlphaPenalties):
    """Parametric ReLU: x for x >= 0, alpha * x otherwise, with a learned `alpha` per
    element of the input (batch axis excepted), or shared along `shared_axes`.

    Every axis of the input that is not shared must have a known size, since `alpha` is
    shaped by it.
    """

    nnx: ClassVar[str] = _NNX + "PReLU"
    onnx: ClassVar[str] = _ONNX + "lower_prelu"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = shared_along_steps
    type: Literal["PReLU"]
    alpha_initializer: Initializer = "zeros"
    """Initializer of `alpha` (Keras default: zeros, so training starts from a plain
    ReLU)."""
    shared_axes: PositiveInt | list[PositiveInt] | None = None
    """Axes along which one `alpha` is shared, counted with the batch axis as 0 (so the
    first axis of the model input's `shape` is 1): `[1, 2]` gives one alpha per channel
    of a (batch, height, width, channels) input. Negative axes are not accepted: Keras
    reads them one axis off."""

    def infer(self, x: TensorType) -> LayerShape:
        _refuse_bool("PReLU", x, "Keras negates it")
        shared = self._shared(x)
        shape = []
        for axis in range(1, x.rank):
            if axis in shared:
                shape.append(1)
            elif x.shape[axis] is None:
                raise ShapeError(
                    f"axis {axis} of the input {x} has a variable size, but alpha is shaped "
                    "by every axis that is not shared",
                    field="inputs",
                    received=str(x),
                    hint=f"Add {axis} to shared_axes to share alpha along that axis.",
                )
            else:
                shape.append(x.shape[axis])
        alpha = ParamInfo("alpha", tuple(shape), (None,) * len(shape))
        return LayerShape(TensorType(x.shape, float_out(x)), (alpha,))

    def _shared(self, x: TensorType) -> set[int]:
        """The shared axes, each checked against the input's rank."""
        given = self.shared_axes
        axes = set() if given is None else {given} if isinstance(given, int) else set(given)
        for axis in sorted(axes):
            if axis >= x.rank:
                raise ShapeError(
                    f"shared axis {axis} is out of range for the rank-{x.rank} input {x} "
                    f"(axes 1 to {x.rank - 1} can be shared)",
                    field="shared_axes",
                    received=f"shared_axes={given}",
                )
        return axes


class ELU(LayerSpec):
    """Exponential linear unit: x for x > 0, alpha * (exp(x) - 1) otherwise."""

    nnx: ClassVar[str] = _NNX + "ELU"
    onnx: ClassVar[str] = _ONNX + "lower_elu"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["ELU"]
    alpha: float = 1.0
    """Scale of the negative part (Keras accepts any value)."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class Softmax(LayerSpec):
    """Softmax along `axis`: exp(x) / sum(exp(x)), normalized over one axis or jointly
    over several.

    A Keras mask on its input (from Embedding/Masking) is refused, as Keras does for a
    (batch, steps) mask on (batch, steps, features) values. Unlike
    Keras, the batch axis 0 cannot be chosen: a softmax across the batch would make each
    example's output depend on the rest of its batch.
    """

    nnx: ClassVar[str] = _NNX + "Softmax"
    onnx: ClassVar[str] = _ONNX + "lower_softmax"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["Softmax"]
    axis: int | list[int] = -1
    """Axis, or list of axes normalized together, counted with the batch axis as 0
    (negative values count from the end). Default: the last axis."""

    def infer(self, x: TensorType) -> LayerShape:
        _refuse_bool("Softmax", x, "Keras subtracts the maximum from it")
        self.axes(x.rank)
        return LayerShape(TensorType(x.shape, float_out(x)))

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras's Softmax takes the input's Keras mask as a mask over its *values*; a
        (batch, steps) mask on (batch, steps, features) does not broadcast, and Keras
        fails there. Refused the same way, at the layer."""
        if mask is not None:
            raise ShapeError(
                f"Softmax would apply the input's Keras mask {mask} to its values {x}, "
                "which Keras refuses",
                field="inputs",
                received=f"mask={mask}",
                hint="Put the Softmax where its input carries no mask (e.g. use "
                "`activation: softmax` on the Dense layer before it).",
            )
        return None

    def axes(self, rank: int) -> tuple[int, ...]:
        """The chosen axes as non-negative numbers, in the order given; a ShapeError on
        `axis` for an axis out of range, the batch axis, an axis named twice, or none."""
        given = [self.axis] if isinstance(self.axis, int) else self.axis
        out: list[int] = []
        for a in given:
            b = a + rank if a < 0 else a
            if not 0 <= b < rank:
                problem = f"axis {a} is out of range for a rank-{rank} input"
            elif b == 0:
                problem = "the batch axis 0 cannot be normalized over"
            elif b in out:
                first = given[out.index(b)]
                problem = f"axis {b} is named twice" + (f" (as {first} and {a})" * (first != a))
            else:
                out.append(b)
                continue
            raise ShapeError(
                problem,
                field="axis",
                received=f"axis={self.axis}",
                hint="Axes count the batch axis as 0: the first axis of the model "
                "input's `shape` is axis 1, the last is -1.",
            )
        if not out:
            raise ShapeError(
                "the list of axes is empty",
                field="axis",
                received="axis=[]",
                hint="Name at least one axis, e.g. `axis: -1`.",
            )
        return tuple(out)
