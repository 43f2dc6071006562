"""Metrics counted from a confusion matrix of thresholded predictions: precision,
recall, the area under a curve of them (AUC), and F-scores."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from modelspec.schema.base import NonNegativeInt, PositiveFloat, PositiveInt
from modelspec.schema.metric_base import MetricSpec, Probability, keras_metric


class _ThresholdedMetric(MetricSpec):
    thresholds: Probability | list[Probability] | None = None
    """Threshold(s) above which a prediction is positive; a list gives one value per
    threshold. Default 0.5 (or, with `top_k`, any value in the top k)."""
    top_k: PositiveInt | None = None
    """Only the k highest predictions of each sample can be positive."""
    class_id: NonNegativeInt | None = None
    """Compute for this class index of the last axis only."""


@keras_metric("precision")
class Precision(_ThresholdedMetric):
    """TP / (TP + FP) of thresholded predictions, over all elements (or one class)."""


@keras_metric("recall")
class Recall(_ThresholdedMetric):
    """TP / (TP + FN) of thresholded predictions, over all elements (or one class)."""


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


@keras_metric("auc")
class AUC(MetricSpec):
    """Area under the ROC or precision-recall curve, from a confusion matrix per threshold."""

    num_thresholds: int = Field(200, gt=1)
    """Number of evenly spaced thresholds on [0, 1] (ignored when `thresholds` is set)."""
    curve: Annotated[Literal["ROC", "PR", "PRGAIN"], BeforeValidator(_upper)] = "ROC"
    """Which curve: ROC, PR (precision-recall) or PRGAIN (precision-recall-gain)."""
    summation_method: Annotated[
        Literal["interpolation", "minoring", "majoring"], BeforeValidator(_lower)
    ] = "interpolation"
    """Riemann sum: `interpolation` (trapezoids; PR uses the Davis-Goadrich interpolation),
    `minoring` (lower bound) or `majoring` (upper bound)."""
    thresholds: list[Probability] | None = None
    """Explicit thresholds (0 - epsilon and 1 + epsilon are added), instead of
    `num_thresholds`."""
    multi_label: bool = False
    """Labels are independent: one curve per label, AUCs averaged. Otherwise all elements
    are pooled into one curve."""
    num_labels: PositiveInt | None = None
    """Number of labels with `multi_label` (else taken from the output shape)."""
    label_weights: list[Annotated[float, Field(ge=0)]] | None = None
    """Per-label weights: weight of each label's data (pooled) or of its AUC (multi_label)."""
    from_logits: bool = False
    """Apply a sigmoid to `y_pred` first."""

    @model_validator(mode="after")
    def _num_labels_needs_multi_label(self) -> AUC:
        if self.num_labels is not None and not self.multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is true")
        return self


class _FScore(MetricSpec):
    average: Literal["micro", "macro", "weighted"] | None = None
    """null: one score per class (the result is a vector); `micro`: pool all classes;
    `macro`: unweighted mean of class scores; `weighted`: mean weighted by class support."""
    threshold: float | None = Field(None, gt=0, le=1)
    """Predictions above it are positive; null: the arg-max of each row is positive."""


@keras_metric("f1_score")
class F1Score(_FScore):
    """Harmonic mean of precision and recall per class (needs 2-D outputs)."""


@keras_metric("fbeta_score")
class FBetaScore(_FScore):
    """F-beta score per class: recall counts beta times as much as precision."""

    beta: PositiveFloat = 1.0
    """Weight of recall relative to precision."""
