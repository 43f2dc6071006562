"""Accuracy metrics: how often a prediction matches its label, exactly, after a threshold,
by arg-max or within the top k (Keras's `*Accuracy` classes), plus the `accuracy` shortcut
that `compile` resolves from the loss."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import PositiveInt
from modelspec.schema.metric_base import MetricSpec, keras_metric


class InferredAccuracy(MetricSpec):
    """The string `accuracy`/`acc`: Binary-, Categorical- or SparseCategoricalAccuracy,
    picked from the loss and the output shapes exactly as Keras's `compile` does."""

    keras_class = False
    aliases = ("accuracy", "acc")

    type: Literal["accuracy"]
    """`accuracy`: the variant is chosen at build time."""
    name: str = "accuracy"
    """Name the metric is logged under (Keras: the string as written)."""


@keras_metric("accuracy")
class Accuracy(MetricSpec):
    """How often `y_pred` equals `y_true` exactly (Keras `Accuracy`; for classifier
    accuracy write the string `accuracy`)."""


@keras_metric("binary_accuracy")
class BinaryAccuracy(MetricSpec):
    """How often `y_pred > threshold` equals the 0/1 label."""

    threshold: float = 0.5
    """Predictions above it count as 1."""


@keras_metric("categorical_accuracy")
class CategoricalAccuracy(MetricSpec):
    """How often the arg-max of `y_pred` is the arg-max of the one-hot `y_true`."""


@keras_metric("sparse_categorical_accuracy")
class SparseCategoricalAccuracy(MetricSpec):
    """How often the arg-max of `y_pred` is the integer label."""


@keras_metric("top_k_categorical_accuracy")
class TopKCategoricalAccuracy(MetricSpec):
    """How often the one-hot label's class is among the `k` highest predictions."""

    k: PositiveInt = 5
    """How many top predictions count."""


@keras_metric("sparse_top_k_categorical_accuracy")
class SparseTopKCategoricalAccuracy(MetricSpec):
    """How often the integer label is among the `k` highest predictions."""

    k: PositiveInt = 5
    """How many top predictions count."""
    from_sorted_ids: bool = False
    """True when `y_pred` already holds class ids sorted by score, not scores."""
