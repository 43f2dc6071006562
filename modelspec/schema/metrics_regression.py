"""Regression metrics: errors between real-valued predictions and targets, and the
coefficient of determination."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import NonNegativeInt
from modelspec.schema.metric_base import MetricSpec


class MeanSquaredError(MetricSpec):
    """Mean of squared errors."""

    aliases = ("mse", "MSE")

    type: Literal["MeanSquaredError"]
    """Keras class name of the metric."""
    name: str = "mean_squared_error"
    """Name the metric is logged under."""


class MeanAbsoluteError(MetricSpec):
    """Mean of absolute errors."""

    aliases = ("mae", "MAE")

    type: Literal["MeanAbsoluteError"]
    """Keras class name of the metric."""
    name: str = "mean_absolute_error"
    """Name the metric is logged under."""


class RootMeanSquaredError(MetricSpec):
    """Square root of the mean of squared errors over everything seen."""

    type: Literal["RootMeanSquaredError"]
    """Keras class name of the metric."""
    name: str = "root_mean_squared_error"
    """Name the metric is logged under."""


class R2Score(MetricSpec):
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
