"""The root of the metric family: what every metric spec has (its Keras class name and
the name it is logged under), and the registry every metric class lands in."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from modelspec.schema.vocabulary import Registered

Probability = Annotated[float, Field(ge=0, le=1)]
"""A threshold on a probability, in [0, 1]."""


class MetricSpec(Registered):
    """Base of every metric spec. Each metric class registers itself under its `type`;
    the union, the string aliases and the JSON Schema enumeration are derived from the
    registry (`modelspec.schema.metrics`)."""

    registry: ClassVar[dict[str, type[MetricSpec]]] = {}
    keras_class: ClassVar[bool] = True
    """False for a `type` that is not a Keras metric class (the `accuracy` shortcut,
    resolved against the loss when the metrics are built)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Strings resolving to this metric besides its class name and that name in snake
    case (Keras's `mse`, `bce`, ...)."""

    type: str
    """Keras class name of the metric."""
    name: str
    """Name the metric is logged under."""
