"""What every metric spec has: its Keras class name and the name it is logged under."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelspec.schema.base import SpecModel

Probability = Annotated[float, Field(ge=0, le=1)]
"""A threshold on a probability, in [0, 1]."""


class MetricBase(SpecModel):
    type: str
    """Keras class name of the metric."""
    name: str
    """Name the metric is logged under."""
