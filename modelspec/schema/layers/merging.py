"""Merge layers: take a list of inputs (`inputs: [a, b, ...]`)."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.common import LayerBase


class Add(LayerBase):
    """Element-wise sum of its inputs (shapes must match or broadcast)."""

    type: Literal["Add"]


class Multiply(LayerBase):
    """Element-wise product of its inputs (shapes must match or broadcast)."""

    type: Literal["Multiply"]


class Concatenate(LayerBase):
    """Concatenation along `axis`; all other axes must match."""

    type: Literal["Concatenate"]
    axis: int = -1
    """Axis to concatenate along."""
