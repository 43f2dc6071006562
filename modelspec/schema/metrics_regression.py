"""Regression metrics: errors between real-valued predictions and targets, and the
coefficient of determination."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import NonNegativeInt
from modelspec.schema.metric_base import MetricSpec, keras_metric


@keras_metric("mean_squared_error")
class MeanSquaredError(MetricSpec):
    """Mean of squared errors."""

    aliases = ("mse", "MSE")


@keras_metric("mean_absolute_error")
class MeanAbsoluteError(MetricSpec):
    """Mean of absolute errors."""

    aliases = ("mae", "MAE")


@keras_metric("root_mean_squared_error")
class RootMeanSquaredError(MetricSpec):
    """Square root of the mean of squared errors over everything seen."""


@keras_metric("r2_score")
class R2Score(MetricSpec):
    """Coefficient of determination per output column (needs 2-D outputs)."""

    class_aggregation: Literal["uniform_average", "variance_weighted_average"] | None = (
        "uniform_average"
    )
    """How per-column scores are combined; null returns the per-column vector."""
    num_regressors: NonNegativeInt = 0
    """Number of independent variables, for the adjusted R2 (0: plain R2)."""
