"""The root of the metric family: what every metric spec has (its Keras class name and
the name it is logged under), and the registry every metric class lands in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, TypeVar

from pydantic import Field

from modelspec.schema.vocabulary import Registered, tagged_by_name

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
    keras_module: ClassVar[str] = "keras.metrics"
    """Where the Keras class of this metric lives: `keras.metrics`, or
    `keras_hub.metrics` for KerasHub's language-model metrics (`Perplexity`)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Strings resolving to this metric besides its class name and that name in snake
    case (Keras's `mse`, `bce`, ...)."""

    type: str
    """Keras class name of the metric."""
    name: str
    """Name the metric is logged under."""


M = TypeVar("M", bound=MetricSpec)


def keras_metric(logged_as: str) -> Callable[[type[M]], type[M]]:
    """Class decorator for a metric named like its Keras class: gives it `type:
    Literal["<class name>"]` and a `name` defaulting to `logged_as` (the Keras metric's
    default name), both documented here once instead of in every metric class."""

    def tag(cls: type[M]) -> type[M]:
        return tagged_by_name(
            cls,
            "Keras class name of the metric.",
            name=(str, Field(logged_as, description="Name the metric is logged under.")),
        )

    return tag
