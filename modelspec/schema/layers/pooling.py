"""Pooling layers (channels-last)."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import PositiveInt
from modelspec.schema.common import LayerBase


class _Pool2D(LayerBase):
    pool_size: PositiveInt | list[PositiveInt] = 2
    """Window size: an int (square) or [height, width]."""
    strides: PositiveInt | list[PositiveInt] | None = None
    """Strides; default: pool_size."""
    padding: Literal["valid", "same"] = "valid"
    """`valid` or `same`."""


class MaxPooling2D(_Pool2D):
    """Max over each window of (batch, height, width, channels)."""

    type: Literal["MaxPooling2D"]


class AveragePooling2D(_Pool2D):
    """Mean over each window; with `same` padding the mean counts real pixels only."""

    type: Literal["AveragePooling2D"]


class GlobalAveragePooling1D(LayerBase):
    """Mean over the steps axis of (batch, steps, features)."""

    type: Literal["GlobalAveragePooling1D"]
    keepdims: bool = False
    """Keep the pooled axis with length 1."""


class GlobalAveragePooling2D(LayerBase):
    """Mean over height and width of (batch, height, width, channels)."""

    type: Literal["GlobalAveragePooling2D"]
    keepdims: bool = False
    """Keep the pooled axes with length 1."""
