"""Losses tracked as metrics (Keras's `keras.metrics.BinaryCrossentropy`, ...): same
arguments as the losses, logged like any metric."""

from __future__ import annotations

from pydantic import Field

from modelspec.schema.metric_base import MetricSpec, keras_metric


@keras_metric("binary_crossentropy")
class BinaryCrossentropy(MetricSpec):
    """Mean binary cross-entropy (the loss, tracked as a metric)."""

    aliases = ("bce", "BCE")
    from_logits: bool = False
    """True when `y_pred` holds logits."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / 2`."""


@keras_metric("categorical_crossentropy")
class CategoricalCrossentropy(MetricSpec):
    """Mean categorical cross-entropy (the loss, tracked as a metric)."""

    from_logits: bool = False
    """True when `y_pred` holds logits."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / num_classes`."""
    axis: int = -1
    """The class axis."""


@keras_metric("sparse_categorical_crossentropy")
class SparseCategoricalCrossentropy(MetricSpec):
    """Mean sparse categorical cross-entropy (the loss, tracked as a metric)."""

    from_logits: bool = False
    """True when `y_pred` holds logits."""
    ignore_class: int | None = None
    """Label whose positions count as zero loss (and zero weight when weights are given)."""
    axis: int = -1
    """The class axis."""


@keras_metric("kl_divergence")
class KLDivergence(MetricSpec):
    """Mean Kullback-Leibler divergence."""


@keras_metric("hinge")
class Hinge(MetricSpec):
    """Mean hinge loss."""


@keras_metric("logcosh")
class LogCoshError(MetricSpec):
    """Mean log(cosh(error))."""


@keras_metric("cosine_similarity")
class CosineSimilarity(MetricSpec):
    """Mean cosine similarity (+1 = same direction; unlike the loss, not negated)."""

    axis: int = -1
    """Axis along which the similarity is computed."""


@keras_metric("perplexity")
class Perplexity(MetricSpec):
    """Perplexity of a language model, `keras_hub.metrics.Perplexity`: the exponential
    of the mean token cross-entropy. Takes integer token targets (batch, steps) and
    predictions (batch, steps, vocabulary). As in KerasHub, each batch contributes its
    mean cross-entropy over its unmasked tokens, weighted by its number of sequences, and
    the result is `exp` of that running mean over the epoch (equal to
    `exp(sum of token cross-entropies / number of tokens)` when no token is masked)."""

    keras_module = "keras_hub.metrics"
    from_logits: bool = False
    """True when `y_pred` holds logits rather than probabilities."""
    mask_token_id: int | None = None
    """Target token id (e.g. padding) whose positions are left out of the mean."""
