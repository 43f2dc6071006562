"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization, RMSNormalization."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveFloat
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.decode_rules import along
from modelspec.schema.layers.shape_math import (
    float_out,
    need_float_input,
    need_min_rank,
    normalize_axes,
)
from modelspec.schema.regularizers import GammaBetaPenalties
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.normalization:"
_ONNX = "modelspec.compiler.layers.onnx.normalization:"


class BatchNormalization(LayerSpec, GammaBetaPenalties):
    """Normalizes with batch statistics in training and moving statistics at
    inference; the moving mean/variance are non-trainable state updated each step as
    `moving = moving * momentum + batch * (1 - momentum)`."""

    nnx: ClassVar[str] = _NNX + "BatchNormalization"
    flops_per_element: ClassVar[int] = 5
    onnx: ClassVar[str] = _ONNX + "lower_batch_norm"
    train_deterministic: ClassVar[bool] = True
    float32_compute: ClassVar[bool] = True  # mixed policies: Keras upcasts, stats stay f32
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["BatchNormalization"]
    axis: int = -1
    """The features axis (normalized per feature)."""
    momentum: float = Field(0.99, ge=0, le=1)
    """Momentum of the moving averages."""
    epsilon: PositiveFloat = 0.001
    """Added to the variance to avoid division by zero."""
    center: bool = True
    """Learn an offset `beta`."""
    scale: bool = True
    """Learn a scale `gamma`."""
    beta_initializer: Initializer = "zeros"
    """Initializer of beta."""
    gamma_initializer: Initializer = "ones"
    """Initializer of gamma."""
    moving_mean_initializer: Initializer = "zeros"
    """Initializer of the moving mean."""
    moving_variance_initializer: Initializer = "ones"
    """Initializer of the moving variance."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        (axis,) = normalize_axes(self.axis, x)
        c = (x.shape[axis],)
        params = []
        if self.scale:
            params.append(ParamInfo("gamma", c, ("norm",)))
        if self.center:
            params.append(ParamInfo("beta", c, ("norm",)))
        params += [
            ParamInfo("moving_mean", c, ("norm",), "batch_stats", trainable=False),
            ParamInfo("moving_variance", c, ("norm",), "batch_stats", trainable=False),
        ]
        return LayerShape(TensorType(x.shape, float_out(x)), tuple(params))

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras computes masked batch statistics in training (only unmasked steps
        count); that is not implemented here, so a masked input is refused."""
        if mask is not None:
            raise ShapeError(
                "BatchNormalization of a masked tensor (Keras's masked batch statistics) "
                "is not supported",
                field="inputs",
                received=f"mask={mask}",
                hint="Use LayerNormalization, or normalize before the Embedding/Masking.",
            )
        return None


class LayerNormalization(LayerSpec, GammaBetaPenalties):
    """Normalizes each sample over `axis` (the features by default)."""

    nnx: ClassVar[str] = _NNX + "LayerNormalization"
    flops_per_element: ClassVar[int] = 5
    onnx: ClassVar[str] = _ONNX + "lower_layer_norm"
    masking: ClassVar[str] = "keep"
    autocast: ClassVar[bool] = False  # Keras: `self.autocast = False`, computes in f32
    float32_compute: ClassVar[bool] = True
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["LayerNormalization"]
    axis: int | Annotated[list[int], Field(min_length=1)] = -1
    """Axis or axes to normalize over (not the batch axis)."""
    epsilon: PositiveFloat = 0.001
    """Added to the variance to avoid division by zero."""
    center: bool = True
    """Learn an offset `beta`."""
    scale: bool = True
    """Learn a scale `gamma`."""
    rms_scaling: bool = False
    """RMS normalization: no mean subtraction and no beta (ignores `center`)."""
    beta_initializer: Initializer = "zeros"
    """Initializer of beta."""
    gamma_initializer: Initializer = "ones"
    """Initializer of gamma."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        axes = normalize_axes(self.axis, x)
        shape = tuple(x.shape[a] for a in axes)
        names = ("norm",) + (None,) * (len(shape) - 1)
        params = []
        if self.scale or self.rms_scaling:
            params.append(ParamInfo("gamma", shape, names))
        if self.center and not self.rms_scaling:
            params.append(ParamInfo("beta", shape, names))
        return LayerShape(TensorType(x.shape, float_out(x)), tuple(params))


class GroupNormalization(LayerSpec, GammaBetaPenalties):
    """Splits the channels of `axis` into `groups` and normalizes each sample over each
    group (its channels and every other non-batch axis); `groups: 1` is close to
    LayerNormalization over all axes, `groups: -1` (one group per channel) is instance
    normalization.

    As in Keras, the statistics are computed in float32 but the normalized values are
    cast back to the input dtype before the float32 output: a float16 input is rounded
    to float16 on the way, and an integer input is truncated to integers.
    """

    nnx: ClassVar[str] = _NNX + "GroupNormalization"
    flops_per_element: ClassVar[int] = 5
    onnx: ClassVar[str] = _ONNX + "lower_group_norm"
    masking: ClassVar[str] = "keep"
    autocast: ClassVar[bool] = False  # Keras: `self.autocast = False`, computes in f32
    float32_compute: ClassVar[bool] = True
    type: Literal["GroupNormalization"]
    groups: int = Field(32, ge=-1)
    """Number of groups; it must divide the size of `axis`. -1: one group per channel."""
    axis: int = -1
    """The channels axis (split into groups)."""
    epsilon: PositiveFloat = 0.001
    """Added to the variance to avoid division by zero."""
    center: bool = True
    """Learn an offset `beta`."""
    scale: bool = True
    """Learn a scale `gamma`."""
    beta_initializer: Initializer = "zeros"
    """Initializer of beta."""
    gamma_initializer: Initializer = "ones"
    """Initializer of gamma."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        (axis,) = normalize_axes(self.axis, x)
        dim = x.shape[axis]
        groups = dim if self.groups == -1 else self.groups
        if groups == 0 or groups > dim or dim % groups:
            problem = (
                "must be a positive integer (or -1 for one group per channel)"
                if groups == 0
                else f"must divide the {dim} channels of axis {self.axis} of the input {x}"
            )
            raise ShapeError(f"groups {problem}", field="groups", received=f"groups={self.groups}")
        params = []
        if self.scale:
            params.append(ParamInfo("gamma", (dim,), ("norm",)))
        if self.center:
            params.append(ParamInfo("beta", (dim,), ("norm",)))
        return LayerShape(TensorType(x.shape, float_out(x)), tuple(params))


def _axes_any_size(axes: int | list[int], x: TensorType, field: str = "axis") -> tuple[int, ...]:
    """Non-negative axes of `x`, in the order written, for a layer without weights (so a
    size may be unknown). Unlike Keras, the batch axis is refused, as by every other
    normalization layer; repeated axes are refused (Keras fails on them when called)."""
    written = [axes] if isinstance(axes, int) else list(axes)
    out = []
    for a in written:
        b = a + x.rank if a < 0 else a
        if not 1 <= b < x.rank or b in out:
            why = (
                "is repeated"
                if b in out
                else f"is out of range for input {x} (the batch axis 0 cannot be normalized)"
            )
            raise ShapeError(
                f"axis {a} {why}",
                field=field,
                received=f"{field}={axes}",
            )
        out.append(b)
    return tuple(out)


class UnitNormalization(LayerSpec):
    """Scales each sample to unit L2 norm over `axis`: `x * min(rsqrt(sum(x**2)), 1e12)`
    (Keras's epsilon 1e-12 bounds the norm from below). Float inputs only: Keras fails on
    integers."""

    nnx: ClassVar[str] = _NNX + "UnitNormalization"
    flops_per_element: ClassVar[int] = 5
    onnx: ClassVar[str] = _ONNX + "lower_unit_norm"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["UnitNormalization"]
    axis: int | Annotated[list[int], Field(min_length=1)] = -1
    """Axis or axes the norm is taken over (not the batch axis)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        _axes_any_size(self.axis, x)
        need_float_input(x, f"needs a float input, got {x.dtype} (Keras fails on it too)")
        return LayerShape(TensorType(x.shape, float_out(x)))


class RMSNormalization(LayerSpec):
    """Root-mean-square normalization: `x * rsqrt(mean(x**2 over axis) + epsilon) * scale`
    (no centring, no offset), computed in float32.

    Keras multiplies by `scale` (shaped like the normalized axes) by broadcasting from
    the right, so `axis` must name the last axes, in increasing order; other axes are
    refused rather than scaled along the wrong axis. Integer and bool inputs come out in
    their own dtype (the result is cast back, as in Keras).
    """

    nnx: ClassVar[str] = _NNX + "RMSNormalization"
    flops_per_element: ClassVar[int] = 5
    onnx: ClassVar[str] = _ONNX + "lower_rms_norm"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along("axis")
    type: Literal["RMSNormalization"]
    axis: int | Annotated[list[int], Field(min_length=1)] = -1
    """Axis or axes to normalize over: the last one(s)."""
    epsilon: PositiveFloat = 1e-6
    """Added to the mean square to avoid division by zero."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        # Keras sorts the axes as written (negative ones first) and shapes `scale` by them.
        written = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        axes = [a for w in written for a in normalize_axes(w, x)]
        if axes != list(range(x.rank - len(axes), x.rank)):
            raise ShapeError(
                f"axis must name the last axes of the input {x} in increasing order, "
                "since Keras broadcasts `scale` against them from the right",
                field="axis",
                received=f"axis={self.axis}",
                hint="e.g. axis: -1, or axis: [-2, -1]." if x.rank > 2 else "Use axis: -1.",
            )
        shape = tuple(x.shape[a] for a in axes)
        names = ("norm",) + (None,) * (len(shape) - 1)  # as LayerNormalization's gamma
        dtype = float_out(x) if x.is_float else x.dtype
        return LayerShape(TensorType(x.shape, dtype), (ParamInfo("scale", shape, names),))
