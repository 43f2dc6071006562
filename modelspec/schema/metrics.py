"""Metric specs: what `model.compile(metrics=[...])` accepts in Keras 3, written as YAML.

Each entry of `metrics:` is a string, resolved the way `keras.metrics.get` and Keras's
`compile_utils.get_metric` resolve it (a class name `Precision`, its snake-case form
`precision`, the aliases `mse`/`mae`/`bce`, and `accuracy`/`acc` in any case, which is
resolved later against the loss and the output shapes), or a mapping
`{type: Precision, thresholds: 0.5, name: p50}` for arguments. As in Keras, a metric
given as a string is logged under that very string (`mse` logs as `mse`), one given as a
mapping under the class's default name (`precision`, `auc`, `f1_score`, ...) unless
`name` says otherwise. The numerics live in `modelspec.runtime.objective.metrics`; no JAX here.

The metric classes live by concept (`metrics_accuracy`, `metrics_confusion`,
`metrics_regression`, `metrics_losslike`) and register themselves in
`MetricSpec.registry` when imported; this module imports them in that order (which is the
order of the union and of its error messages) and derives everything else from the
registry.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from modelspec.errors import choices_hint
from modelspec.schema.metric_base import MetricSpec
from modelspec.schema.vocabulary import tagged_union, type_tag

# isort: off
# The concept modules are imported in the order of the union (each class registers
# itself when defined): accuracy, confusion-matrix, regression, tracked losses.
from modelspec.schema.metrics_accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    InferredAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from modelspec.schema.metrics_confusion import AUC, F1Score, FBetaScore, Precision, Recall
from modelspec.schema.metrics_regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)
from modelspec.schema.metrics_losslike import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    Perplexity,
    SparseCategoricalCrossentropy,
)
# isort: on

METRIC_TYPES: dict[str, type[MetricSpec]] = MetricSpec.registry
"""Supported metric models by their `type` (Keras class names, plus `accuracy`): the
registry itself."""

_KERAS_CLASSES = [cls for cls in METRIC_TYPES.values() if cls.keras_class]
_SHORTCUTS = [cls for cls in METRIC_TYPES.values() if not cls.keras_class]
"""Types that are not Keras classes (`accuracy`), resolved when the metrics are built."""


def _type_names(classes: list[type[MetricSpec]]) -> list[str]:
    return [str(type_tag(cls)) for cls in classes]


def _keras_snake_case(name: str) -> str:
    """`keras.src.utils.naming.to_snake_case`, which makes Keras's metric string aliases."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


METRIC_ALIASES: dict[str, str] = {
    **{cls.__name__: cls.__name__ for cls in _KERAS_CLASSES},
    **{_keras_snake_case(cls.__name__): cls.__name__ for cls in _KERAS_CLASSES},
    **{alias: type_tag(cls) for cls in _KERAS_CLASSES + _SHORTCUTS for alias in cls.aliases},
}
"""Every string `keras.metrics.get` (or `compile`'s accuracy shortcut) resolves to a
supported metric, mapped to its `type`: each Keras class's name and snake-case name, then
every class's `aliases` (the shortcut's last). Case-sensitive as in Keras, except that
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
            f"Supported: {', '.join(_type_names(_KERAS_CLASSES + _SHORTCUTS))}."
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

AnyMetricSpec = tagged_union(MetricSpec.registry)
"""The mapping form only (what a validated spec holds)."""

Metric = Annotated[
    AnyMetricSpec,
    BeforeValidator(_coerce_metric, json_schema_input_type=MetricName | AnyMetricSpec),
]
"""A metric as written in a spec: a Keras metric name string or a `{type: ..., ...}`
mapping. Validates to one of the models above."""

__all__ = [
    "AUC",
    "Accuracy",
    "AnyMetricSpec",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "Hinge",
    "InferredAccuracy",
    "KLDivergence",
    "LogCoshError",
    "METRIC_ALIASES",
    "METRIC_TYPES",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "MetricName",
    "MetricSpec",
    "Perplexity",
    "Precision",
    "R2Score",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
]
