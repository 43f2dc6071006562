"""Normalization layers: BatchNormalization, LayerNormalization."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveFloat
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import float_out, need_min_rank, normalize_axes
from modelspec.schema.tensors import LayerShape, ParamInfo, TensorType

_NNX = "modelspec.compiler.layers.normalization:"


class BatchNormalization(LayerSpec):
    """Normalizes with batch statistics in training and moving statistics at
    inference; the moving mean/variance are non-trainable state updated each step as
    `moving = moving * momentum + batch * (1 - momentum)`."""

    nnx: ClassVar[str] = _NNX + "BatchNormalization"
    train_deterministic: ClassVar[bool] = True
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


class LayerNormalization(LayerSpec):
    """Normalizes each sample over `axis` (the features by default)."""

    nnx: ClassVar[str] = _NNX + "LayerNormalization"
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
