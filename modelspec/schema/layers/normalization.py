"""Normalization layers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelspec.schema.base import PositiveFloat
from modelspec.schema.common import Initializer, LayerBase


class BatchNormalization(LayerBase):
    """Normalizes with batch statistics in training and moving statistics at
    inference; the moving mean/variance are non-trainable state updated each step as
    `moving = moving * momentum + batch * (1 - momentum)`."""

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


class LayerNormalization(LayerBase):
    """Normalizes each sample over `axis` (the features by default)."""

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
