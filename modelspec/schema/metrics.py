"""Metric specs: what `model.compile(metrics=[...])` accepts in Keras 3, written as YAML.

Each entry of `metrics:` is a string, resolved the way `keras.metrics.get` and Keras's
`compile_utils.get_metric` resolve it (a class name `Precision`, its snake-case form
`precision`, the aliases `mse`/`mae`/`bce`, and `accuracy`/`acc` in any case, which is
resolved later against the loss and the output shapes), or a mapping
`{type: Precision, thresholds: 0.5, name: p50}` for arguments. As in Keras, a metric
given as a string is logged under that very string (`mse` logs as `mse`), one given as a
mapping under the class's default name (`precision`, `auc`, `f1_score`, ...) unless
`name` says otherwise. The numerics live in `modelspec.runtime.metrics`; no JAX here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from modelspec.errors import choices_hint
from modelspec.schema.base import NonNegativeInt, PositiveFloat, PositiveInt, SpecModel
from modelspec.schema.metric_base import MetricBase, Probability
from modelspec.schema.metrics_losslike import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    SparseCategoricalCrossentropy,
)


class InferredAccuracy(MetricBase):
    """The string `accuracy`/`acc`: Binary-, Categorical- or SparseCategoricalAccuracy,
    picked from the loss and the output shapes exactly as Keras's `compile` does."""

    type: Literal["accuracy"]
    """`accuracy`: the variant is chosen at build time."""
    name: str = "accuracy"
    """Name the metric is logged under (Keras: the string as written)."""


class Accuracy(MetricBase):
    """How often `y_pred` equals `y_true` exactly (Keras `Accuracy`; for classifier
    accuracy write the string `accuracy`)."""

    type: Literal["Accuracy"]
    """Keras class name of the metric."""
    name: str = "accuracy"
    """Name the metric is logged under."""


class BinaryAccuracy(MetricBase):
    """How often `y_pred > threshold` equals the 0/1 label."""

    type: Literal["BinaryAccuracy"]
    """Keras class name of the metric."""
    name: str = "binary_accuracy"
    """Name the metric is logged under."""
    threshold: float = 0.5
    """Predictions above it count as 1."""


class CategoricalAccuracy(MetricBase):
    """How often the arg-max of `y_pred` is the arg-max of the one-hot `y_true`."""

    type: Literal["CategoricalAccuracy"]
    """Keras class name of the metric."""
    name: str = "categorical_accuracy"
    """Name the metric is logged under."""


class SparseCategoricalAccuracy(MetricBase):
    """How often the arg-max of `y_pred` is the integer label."""

    type: Literal["SparseCategoricalAccuracy"]
    """Keras class name of the metric."""
    name: str = "sparse_categorical_accuracy"
    """Name the metric is logged under."""


class TopKCategoricalAccuracy(MetricBase):
    """How often the one-hot label's class is among the `k` highest predictions."""

    type: Literal["TopKCategoricalAccuracy"]
    """Keras class name of the metric."""
    name: str = "top_k_categorical_accuracy"
    """Name the metric is logged under."""
    k: PositiveInt = 5
    """How many top predictions count."""


class SparseTopKCategoricalAccuracy(MetricBase):
    """How often the integer label is among the `k` highest predictions."""

    type: Literal["SparseTopKCategoricalAccuracy"]
    """Keras class name of the metric."""
    name: str = "sparse_top_k_categorical_accuracy"
    """Name the metric is logged under."""
    k: PositiveInt = 5
    """How many top predictions count."""
    from_sorted_ids: bool = False
    """True when `y_pred` already holds class ids sorted by score, not scores."""


class _ThresholdedMetric(MetricBase):
    thresholds: Probability | list[Probability] | None = None
    """Threshold(s) above which a prediction is positive; a list gives one value per
    threshold. Default 0.5 (or, with `top_k`, any value in the top k)."""
    top_k: PositiveInt | None = None
    """Only the k highest predictions of each sample can be positive."""
    class_id: NonNegativeInt | None = None
    """Compute for this class index of the last axis only."""


class Precision(_ThresholdedMetric):
    """TP / (TP + FP) of thresholded predictions, over all elements (or one class)."""

    type: Literal["Precision"]
    """Keras class name of the metric."""
    name: str = "precision"
    """Name the metric is logged under."""


class Recall(_ThresholdedMetric):
    """TP / (TP + FN) of thresholded predictions, over all elements (or one class)."""

    type: Literal["Recall"]
    """Keras class name of the metric."""
    name: str = "recall"
    """Name the metric is logged under."""


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class AUC(MetricBase):
    """Area under the ROC or precision-recall curve, from a confusion matrix per threshold."""

    type: Literal["AUC"]
    """Keras class name of the metric."""
    name: str = "auc"
    """Name the metric is logged under."""
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


class _FScore(MetricBase):
    average: Literal["micro", "macro", "weighted"] | None = None
    """null: one score per class (the result is a vector); `micro`: pool all classes;
    `macro`: unweighted mean of class scores; `weighted`: mean weighted by class support."""
    threshold: float | None = Field(None, gt=0, le=1)
    """Predictions above it are positive; null: the arg-max of each row is positive."""


class F1Score(_FScore):
    """Harmonic mean of precision and recall per class (needs 2-D outputs)."""

    type: Literal["F1Score"]
    """Keras class name of the metric."""
    name: str = "f1_score"
    """Name the metric is logged under."""


class FBetaScore(_FScore):
    """F-beta score per class: recall counts beta times as much as precision."""

    type: Literal["FBetaScore"]
    """Keras class name of the metric."""
    name: str = "fbeta_score"
    """Name the metric is logged under."""
    beta: PositiveFloat = 1.0
    """Weight of recall relative to precision."""


class MeanSquaredError(MetricBase):
    """Mean of squared errors."""

    type: Literal["MeanSquaredError"]
    """Keras class name of the metric."""
    name: str = "mean_squared_error"
    """Name the metric is logged under."""


class MeanAbsoluteError(MetricBase):
    """Mean of absolute errors."""

    type: Literal["MeanAbsoluteError"]
    """Keras class name of the metric."""
    name: str = "mean_absolute_error"
    """Name the metric is logged under."""


class RootMeanSquaredError(MetricBase):
    """Square root of the mean of squared errors over everything seen."""

    type: Literal["RootMeanSquaredError"]
    """Keras class name of the metric."""
    name: str = "root_mean_squared_error"
    """Name the metric is logged under."""


class R2Score(MetricBase):
    """Coefficient of determination per output column (needs 2-D outputs)."""

    type: Literal["R2Score"]
    """Keras class name of the metric."""
    name: str = "r2_score"
    """Name the metric is logged under."""
    class_aggregation: Literal["uniform_average", "variance_weighted_average"] | None = (
        "uniform_average"
    )
    """How per-column scores are combined; null returns the per-column vector."""
    num_regressors: NonNegativeInt = 0
    """Number of independent variables, for the adjusted R2 (0: plain R2)."""


_CLASSES: tuple[type[MetricBase], ...] = (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    Precision,
    Recall,
    AUC,
    F1Score,
    FBetaScore,
    MeanSquaredError,
    MeanAbsoluteError,
    RootMeanSquaredError,
    R2Score,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    KLDivergence,
    Hinge,
    LogCoshError,
    CosineSimilarity,
)

METRIC_TYPES: dict[str, type[SpecModel]] = {
    "accuracy": InferredAccuracy,
    **{cls.__name__: cls for cls in _CLASSES},
}
"""Supported metric models by their `type` (Keras class names, plus `accuracy`)."""


def _keras_snake_case(name: str) -> str:
    """`keras.src.utils.naming.to_snake_case`, which makes Keras's metric string aliases."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


METRIC_ALIASES: dict[str, str] = {
    **{cls.__name__: cls.__name__ for cls in _CLASSES},
    **{_keras_snake_case(cls.__name__): cls.__name__ for cls in _CLASSES},
    "mse": "MeanSquaredError",
    "MSE": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "MAE": "MeanAbsoluteError",
    "bce": "BinaryCrossentropy",
    "BCE": "BinaryCrossentropy",
    "accuracy": "accuracy",
    "acc": "accuracy",
}
"""Every string `keras.metrics.get` (or `compile`'s accuracy shortcut) resolves to a
supported metric, mapped to its `type`. Case-sensitive as in Keras, except that
`accuracy`/`acc` match in any case."""

_OTHER_KERAS_METRICS = (
    *("MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "Mean", "Sum"),
    *("SquaredHinge", "CategoricalHinge", "PearsonCorrelation", "ConcordanceCorrelation"),
    *("TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives"),
    *("PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity"),
    *("SpecificityAtSensitivity", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU"),
    *("mape", "MAPE", "msle", "MSLE"),
)
"""Keras metric names that modelspec does not implement (for a clearer error)."""


def _canonical(name: str) -> str:
    if name.lower() in ("accuracy", "acc"):
        return "accuracy"
    if name in METRIC_ALIASES:
        return METRIC_ALIASES[name]
    if name in _OTHER_KERAS_METRICS:
        raise ValueError(
            f"Keras metric {name!r} is not supported by modelspec. "
            f"Supported: {', '.join(cls.__name__ for cls in _CLASSES)}, accuracy."
        )
    raise ValueError(f"Unknown metric {name!r}. {choices_hint(name, list(METRIC_ALIASES))}")


def _coerce_metric(value: Any) -> Any:
    """String form -> mapping form named after the string (as Keras names it)."""
    if isinstance(value, str):
        return {"type": _canonical(value), "name": value}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        if value["type"] == "Accuracy":  # the exact-match class, not the shortcut
            return value
        return {**value, "type": _canonical(value["type"])}
    return value


MetricName = Literal[tuple(METRIC_ALIASES)]  # type: ignore[valid-type]
"""The string form (JSON Schema enum for editors)."""

AnyMetricSpec = Annotated[
    InferredAccuracy
    | Accuracy
    | BinaryAccuracy
    | CategoricalAccuracy
    | SparseCategoricalAccuracy
    | TopKCategoricalAccuracy
    | SparseTopKCategoricalAccuracy
    | Precision
    | Recall
    | AUC
    | F1Score
    | FBetaScore
    | MeanSquaredError
    | MeanAbsoluteError
    | RootMeanSquaredError
    | R2Score
    | BinaryCrossentropy
    | CategoricalCrossentropy
    | SparseCategoricalCrossentropy
    | KLDivergence
    | Hinge
    | LogCoshError
    | CosineSimilarity,
    Field(discriminator="type"),
]
"""The mapping form only (what a validated spec holds)."""

Metric = Annotated[
    AnyMetricSpec,
    BeforeValidator(_coerce_metric, json_schema_input_type=MetricName | AnyMetricSpec),
]
"""A metric as written in a spec: a Keras metric name string or a `{type: ..., ...}`
mapping. Validates to one of the models above."""
