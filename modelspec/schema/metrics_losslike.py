"""Losses tracked as metrics (Keras's `keras.metrics.BinaryCrossentropy`, ...): same
arguments as the losses, logged like any metric."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelspec.schema.metric_base import MetricSpec


class BinaryCrossentropy(MetricSpec):
    """Mean binary cross-entropy (the loss, tracked as a metric)."""

    aliases = ("bce", "BCE")

    type: Literal["BinaryCrossentropy"]
    """Keras class name of the metric."""
    name: str = "binary_crossentropy"
    """Name the metric is logged under."""
    from_logits: bool = False
    """True when `y_pred` holds logits."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / 2`."""


class CategoricalCrossentropy(MetricSpec):
    """Mean categorical cross-entropy (the loss, tracked as a metric)."""

    type: Literal["CategoricalCrossentropy"]
    """Keras class name of the metric."""
    name: str = "categorical_crossentropy"
    """Name the metric is logged under."""
    from_logits: bool = False
    """True when `y_pred` holds logits."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / num_classes`."""
    axis: int = -1
    """The class axis."""


class SparseCategoricalCrossentropy(MetricSpec):
    """Mean sparse categorical cross-entropy (the loss, tracked as a metric)."""

    type: Literal["SparseCategoricalCrossentropy"]
    """Keras class name of the metric."""
    name: str = "sparse_categorical_crossentropy"
    """Name the metric is logged under."""
    from_logits: bool = False
    """True when `y_pred` holds logits."""
    ignore_class: int | None = None
    """Label whose positions count as zero loss (and zero weight when weights are given)."""
    axis: int = -1
    """The class axis."""


class KLDivergence(MetricSpec):
    """Mean Kullback-Leibler divergence."""

    type: Literal["KLDivergence"]
    """Keras class name of the metric."""
    name: str = "kl_divergence"
    """Name the metric is logged under."""


class Hinge(MetricSpec):
    """Mean hinge loss."""

    type: Literal["Hinge"]
    """Keras class name of the metric."""
    name: str = "hinge"
    """Name the metric is logged under."""


class LogCoshError(MetricSpec):
    """Mean log(cosh(error))."""

    type: Literal["LogCoshError"]
    """Keras class name of the metric."""
    name: str = "logcosh"
    """Name the metric is logged under."""


class CosineSimilarity(MetricSpec):
    """Mean cosine similarity (+1 = same direction; unlike the loss, not negated)."""

    type: Literal["CosineSimilarity"]
    """Keras class name of the metric."""
    name: str = "cosine_similarity"
    """Name the metric is logged under."""
    axis: int = -1
    """Axis along which the similarity is computed."""
