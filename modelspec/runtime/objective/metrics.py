"""Keras 3 metrics as pure functional triples that live inside one jitted train step.

A Keras metric is an object with variables; here each is a `MetricFn` of three pure
functions: `init() -> state` (a dict of float32 arrays), `update(state, y_true, y_pred,
sample_weight=None) -> state` and `result(state) -> jax.Array`. States are plain pytrees,
so they are carried through `jax.jit`/`jax.lax.scan` and accumulated on device; only
`result` at a log point needs the host. Every update reproduces the Keras metric's
`update_state` (including `Mean`'s sample-wise reduction of weights and values), so
`result` after N updates equals Keras's `result()` after the same N calls. The
per-sample accuracy functions are in `metrics_accuracy`, the confusion-matrix metrics
(precision, recall, AUC, F-scores) in `metrics_confusion`.

`build_metrics` resolves the string `accuracy` the way Keras documents it: from the loss
for the cross-entropies (sparse -> SparseCategoricalAccuracy, categorical ->
CategoricalAccuracy, binary -> BinaryAccuracy), else from the output shapes with
`keras.src.trainers.compile_utils.is_binary_or_sparse_categorical`. Keras 3's code uses
the shape rule alone; the two differ only for binary cross-entropy on multi-label
outputs, where Keras 3 picks CategoricalAccuracy (an arg-max match) and this picks the
BinaryAccuracy its documentation promises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from pydantic import TypeAdapter

from modelspec.runtime.objective import losses as L
from modelspec.runtime.objective import metrics_confusion as C
from modelspec.runtime.objective.metrics_accuracy import (
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from modelspec.runtime.objective.metrics_perplexity import perplexity
from modelspec.schema import losses as loss_schema
from modelspec.schema import metrics as schema

Array = jax.Array
State = dict[str, Array]
Shape = Sequence[int | None]


@dataclass(frozen=True)
class MetricFn:
    """One compiled metric: pure functions over a pytree state (see module docstring)."""

    name: str
    """Name it is logged under (Keras's naming: the string as written, else `name`)."""
    init: Callable[[], State]
    """Fresh (zero) state."""
    update: Callable[..., State]
    """`update(state, y_true, y_pred, sample_weight=None) -> state`; jit-safe."""
    result: Callable[[State], Array]
    """The metric value: a scalar, or a vector for per-class/per-threshold results."""
    uses_mask: bool = False
    """Keras applies `y_pred`'s mask (padded steps) as sample weights: true for the
    MeanMetricWrapper metrics (accuracies, losses); the others ignore masks in Keras."""


def _reduce_to_samplewise(
    values: Array, sample_weight: Any, mask: Array | None
) -> tuple[Array, Array | None]:
    """`keras.src.metrics.reduction_metrics.reduce_to_samplewise_values` with a mean."""
    values = values.astype(jnp.float32)
    sw = None
    if sample_weight is not None:
        sw = jnp.asarray(sample_weight, jnp.float32)
        if mask is not None:
            sw = L.apply_mask(sw, mask, "sum")
        values, sw = L.squeeze_or_expand_to_same_rank(values, sw)
        weight_ndim = sw.ndim
        if values.ndim > weight_ndim:
            values = jnp.mean(values, axis=tuple(range(weight_ndim, values.ndim)))
        sw = jnp.broadcast_to(sw, values.shape)
        values = values * sw
        if weight_ndim > 1:
            sw = jnp.mean(sw, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
    return values, sw


def _mean_init() -> State:
    return {"total": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.float32)}


def _mean_update(
    state: State, values: Array, sample_weight: Any = None, mask: Array | None = None
) -> State:
    values, sw = _reduce_to_samplewise(jnp.asarray(values), sample_weight, mask)
    if sw is not None:
        count = jnp.sum(sw)
    else:
        count = jnp.float32(values.shape[0] if values.ndim >= 1 else 1)
    return {"total": state["total"] + jnp.sum(values), "count": state["count"] + count}


def _mean_result(state: State) -> Array:
    return L.divide_no_nan(state["total"], state["count"])


@dataclass(frozen=True)
class Mean:
    """Keras `metrics.Mean`: weighted running mean. The trainer's `loss` entry uses it with
    `update(state, batch_loss, sample_weight=batch_size)`, as Keras's loss tracker does."""

    name: str = "loss"
    """Name it is logged under."""

    def init(self) -> State:
        """Fresh (zero) state."""
        return _mean_init()

    def update(self, state: State, values: Any, sample_weight: Any = None) -> State:
        """Add `values` (any shape) with optional weights; jit-safe."""
        return _mean_update(state, jnp.asarray(values), sample_weight)

    def result(self, state: State) -> Array:
        """total / count (0 before any update)."""
        return _mean_result(state)


def _wrap(name: str, fn: Callable[[Array, Array], Array], mask_fn: Any = None) -> MetricFn:
    """Keras `MeanMetricWrapper`: per-sample values of `fn`, then a weighted `Mean`."""

    def update(state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred).astype(jnp.float32)
        mask = None if mask_fn is None else mask_fn(y_true, y_pred)
        return _mean_update(state, fn(y_true, y_pred), sample_weight, mask)

    return MetricFn(name, _mean_init, update, _mean_result, uses_mask=True)


def _rmse(name: str) -> MetricFn:
    def update(state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_true = jnp.asarray(y_true).astype(jnp.float32)
        y_pred = jnp.asarray(y_pred).astype(jnp.float32)
        y_true, y_pred = L.squeeze_or_expand_to_same_rank(y_true, y_pred)
        return _mean_update(state, jnp.square(y_pred - y_true), sample_weight)

    return MetricFn(name, _mean_init, update, lambda s: jnp.sqrt(_mean_result(s)))


def _r2(spec: schema.R2Score, num_outputs: int | None) -> MetricFn:
    """Keras `R2Score` (2-D outputs). Like Keras, `num_samples` counts elements, not rows."""
    if num_outputs is None:
        raise ValueError("R2Score needs the output shape (number of output columns)")
    keys = ("sum", "squared_sum", "residual", "count")

    def init() -> State:
        state = {k: jnp.zeros((num_outputs,), jnp.float32) for k in keys}
        return {**state, "num_samples": jnp.zeros((), jnp.float32)}

    def update(state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_true = jnp.asarray(y_true).astype(jnp.float32)
        y_pred = jnp.asarray(y_pred).astype(jnp.float32)
        y_true, y_pred = L.squeeze_or_expand_to_same_rank(y_true, y_pred)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(f"R2Score expects 2-D inputs; got {y_true.shape}, {y_pred.shape}")
        sw = jnp.asarray(1.0 if sample_weight is None else sample_weight, jnp.float32)
        if sw.ndim == 1:
            sw = sw[:, None]
        sw = jnp.broadcast_to(sw, y_true.shape)
        weighted = y_true * sw
        return {
            "sum": state["sum"] + jnp.sum(weighted, axis=0),
            "squared_sum": state["squared_sum"] + jnp.sum(y_true * weighted, axis=0),
            "residual": state["residual"] + jnp.sum((y_true - y_pred) ** 2 * sw, axis=0),
            "count": state["count"] + jnp.sum(sw, axis=0),
            "num_samples": state["num_samples"] + y_true.size,
        }

    def result(state: State) -> Array:
        mean = state["sum"] / state["count"]
        total = state["squared_sum"] - state["sum"] * mean
        raw = 1 - state["residual"] / total
        raw = jnp.where(jnp.isinf(raw), 0.0, raw)
        if spec.class_aggregation == "uniform_average":
            score = jnp.mean(raw)
        elif spec.class_aggregation == "variance_weighted_average":
            score = jnp.sum(total * raw) / jnp.sum(total)
        else:
            score = raw
        p = spec.num_regressors
        if p == 0:
            return score
        n = state["num_samples"]
        # Keras warns and falls back to the plain score when n - 1 <= p.
        adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return jnp.where(n - 1 <= p, score, adjusted)

    return MetricFn(spec.name, init, update, result)


def _sparse_ce_mask(spec: schema.SparseCategoricalCrossentropy) -> Any:
    if spec.ignore_class is None:
        return None
    return lambda t, p: L.ignore_class_mask(t, p, spec.ignore_class, spec.axis)


def build_metric(spec: schema.AnyMetricSpec, *, y_pred_shape: Shape | None = None) -> MetricFn:
    """Compile one metric spec (`accuracy` must be resolved already, see build_metrics)."""
    last = None if not y_pred_shape else y_pred_shape[-1]
    name = spec.name
    match spec:
        case schema.Accuracy():
            return _wrap(name, accuracy)
        case schema.BinaryAccuracy():
            return _wrap(name, lambda t, p: binary_accuracy(t, p, spec.threshold))
        case schema.CategoricalAccuracy():
            return _wrap(name, categorical_accuracy)
        case schema.SparseCategoricalAccuracy():
            return _wrap(name, sparse_categorical_accuracy)
        case schema.TopKCategoricalAccuracy():
            return _wrap(name, lambda t, p: top_k_categorical_accuracy(t, p, spec.k))
        case schema.SparseTopKCategoricalAccuracy():
            return _wrap(
                name,
                lambda t, p: sparse_top_k_categorical_accuracy(t, p, spec.k, spec.from_sorted_ids),
            )
        case schema.Precision() | schema.Recall():
            return MetricFn(name, *C.precision_recall(spec))
        case schema.AUC():
            return MetricFn(name, *C.auc(spec, last))
        case schema.F1Score() | schema.FBetaScore():
            return MetricFn(name, *C.fbeta(spec, last))
        case schema.MeanSquaredError():
            return _wrap(name, L.mean_squared_error)
        case schema.MeanAbsoluteError():
            return _wrap(name, L.mean_absolute_error)
        case schema.RootMeanSquaredError():
            return _rmse(name)
        case schema.R2Score():
            return _r2(spec, last)
        case schema.BinaryCrossentropy():
            return _wrap(
                name,
                lambda t, p: L.binary_crossentropy(
                    t, p, from_logits=spec.from_logits, label_smoothing=spec.label_smoothing
                ),
            )
        case schema.CategoricalCrossentropy():
            return _wrap(
                name,
                lambda t, p: L.categorical_crossentropy(
                    t,
                    p,
                    from_logits=spec.from_logits,
                    label_smoothing=spec.label_smoothing,
                    axis=spec.axis,
                ),
            )
        case schema.SparseCategoricalCrossentropy():
            fn = L.sparse_categorical_crossentropy
            return _wrap(
                name,
                lambda t, p: fn(
                    t,
                    p,
                    from_logits=spec.from_logits,
                    ignore_class=spec.ignore_class,
                    axis=spec.axis,
                ),
                _sparse_ce_mask(spec),
            )
        case schema.KLDivergence():
            return _wrap(name, L.kl_divergence)
        case schema.Hinge():
            return _wrap(name, L.hinge)
        case schema.LogCoshError():
            return _wrap(name, L.log_cosh)
        case schema.CosineSimilarity():
            return _wrap(name, lambda t, p: L.cosine_similarity(t, p, axis=spec.axis))
        case schema.Perplexity():
            return MetricFn(name, *perplexity(spec, y_pred_shape))
        case schema.InferredAccuracy():
            raise ValueError("'accuracy' depends on the loss: build it with build_metrics")
    raise TypeError(f"Not a metric spec: {spec!r}")


_ACCURACY_FOR_LABELS = {
    "sparse": "SparseCategoricalAccuracy",
    "categorical": "CategoricalAccuracy",
    "binary": "BinaryAccuracy",
}
"""Keras's accuracy for a cross-entropy, by the kind of labels the loss takes."""


def resolve_accuracy(
    loss_spec: loss_schema.AnyLossSpec | None,
    y_true_shape: Shape | None = None,
    y_pred_shape: Shape | None = None,
) -> str:
    """Which accuracy the string `accuracy` means: `BinaryAccuracy`, `CategoricalAccuracy`
    or `SparseCategoricalAccuracy` (see the module docstring for the rule)."""
    if loss_spec is not None and loss_spec.label_kind in _ACCURACY_FOR_LABELS:
        return _ACCURACY_FOR_LABELS[loss_spec.label_kind]
    if y_true_shape is None or y_pred_shape is None:
        raise ValueError(
            "metric 'accuracy' with a loss other than a cross-entropy is resolved from the "
            "output shapes, which were not given"
        )
    t_rank, p_rank = len(y_true_shape), len(y_pred_shape)
    t_last, p_last = y_true_shape[-1], y_pred_shape[-1]
    if p_last == 1:
        return "BinaryAccuracy"
    if t_rank < p_rank or (t_last == 1 and p_last is not None and p_last > 1):
        return "SparseCategoricalAccuracy"
    return "CategoricalAccuracy"


_METRIC_ADAPTER: TypeAdapter[Any] = TypeAdapter(schema.Metric)
_LOSS_ADAPTER: TypeAdapter[Any] = TypeAdapter(loss_schema.Loss)


def build_metrics(
    metric_specs: Sequence[schema.AnyMetricSpec | str | Mapping[str, Any]],
    loss_spec: loss_schema.AnyLossSpec | str | Mapping[str, Any] | None,
    *,
    y_true_shape: Shape | None = None,
    y_pred_shape: Shape | None = None,
) -> list[MetricFn]:
    """Compile a spec's `metrics:` list against its loss.

    Shapes (batch axis included, None for unknown sizes) are needed only for `accuracy`
    with a non-cross-entropy loss, and for metrics whose state is per class: F1Score and
    FBetaScore (unless `average: micro`), R2Score, and AUC with `multi_label`.
    """
    if loss_spec is not None and not isinstance(loss_spec, loss_schema.LossSpec):
        loss_spec = _LOSS_ADAPTER.validate_python(loss_spec)
    built: list[MetricFn] = []
    for raw in metric_specs:
        spec = raw
        if not isinstance(raw, schema.MetricSpec):
            spec = _METRIC_ADAPTER.validate_python(raw)
        if isinstance(spec, schema.InferredAccuracy):
            kind = resolve_accuracy(loss_spec, y_true_shape, y_pred_shape)
            spec = schema.METRIC_TYPES[kind](type=kind, name=spec.name)
        built.append(build_metric(spec, y_pred_shape=y_pred_shape))
    names = [m.name for m in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Duplicate metric names {duplicates}: give one of each a `name`")
    return built
