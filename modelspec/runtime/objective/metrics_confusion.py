"""Confusion-matrix metrics (Precision, Recall, AUC, F1Score/FBetaScore) as pure JAX.

Each is an `(init, update, result)` triple over a dict of float32 counters, so it can be
carried through `jax.jit`/`jax.lax.scan` and accumulated on device. The counting is a
port of `keras.src.metrics.metrics_utils.update_confusion_matrix_variables`, including
its two code paths: evenly spaced thresholds (AUC's default) are counted by bucketing
each prediction and taking a reverse cumulative sum, any other thresholds by comparing
every prediction with every threshold. The paths can disagree by one bucket when a
prediction sits exactly on a threshold, so matching Keras bit-for-bit means taking the
same path it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from modelspec.runtime.objective.losses import (
    EPSILON,
    divide_no_nan,
    squeeze_or_expand_to_same_rank,
)
from modelspec.schema import metrics as schema

Array = jax.Array
State = dict[str, Array]
Triple = tuple[Callable[[], State], Callable[..., State], Callable[[State], Array]]
NEG_INF = -1e10


def _evenly_distributed(thresholds: np.ndarray) -> bool:
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x: Array, k: int) -> Array:
    """Keep the k largest entries of the last axis, set the others to -1e10."""
    _, idx = jax.lax.top_k(x, k)
    mask = jnp.sum(jax.nn.one_hot(idx, x.shape[-1], dtype=x.dtype), axis=-2)
    return x * mask + NEG_INF * (1 - mask)


def confusion_counts(
    y_true: Any,
    y_pred: Any,
    thresholds: np.ndarray,
    *,
    evenly: bool,
    sample_weight: Any = None,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
    label_weights: Array | None = None,
) -> State:
    """Weighted TP/FP/TN/FN per threshold (shape (T,), or (T, L) with multi_label)."""
    y_true = jnp.asarray(y_true).astype(jnp.float32)
    y_pred = jnp.asarray(y_pred).astype(jnp.float32)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = jnp.expand_dims(jnp.asarray(sample_weight, jnp.float32), -1)
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight, False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    weights = jnp.float32(1.0)
    if sample_weight is not None:
        weights = jnp.broadcast_to(sample_weight, y_pred.shape)
    if label_weights is not None and not multi_label:
        weights = weights * jnp.broadcast_to(label_weights[None], y_pred.shape)
    weights = jnp.broadcast_to(weights, y_pred.shape)
    if evenly:
        return _bucketed_counts(y_true, y_pred, weights, thresholds, multi_label)
    thr = jnp.asarray(thresholds, jnp.float32)
    if multi_label:  # (T, N, L), summed over N
        pred_pos = y_pred[None] > thr[:, None, None]
        label_pos = (y_true != 0)[None]
        w = weights[None]
    else:  # (T, N * L), summed over N * L
        pred_pos = y_pred.reshape(1, -1) > thr[:, None]
        label_pos = (y_true != 0).reshape(1, -1)
        w = weights.reshape(1, -1)

    def count(label: Array, pred: Array) -> Array:
        return jnp.sum(jnp.where(label & pred, w, 0.0), axis=1)

    return {
        "tp": count(label_pos, pred_pos),
        "fp": count(~label_pos, pred_pos),
        "tn": count(~label_pos, ~pred_pos),
        "fn": count(label_pos, ~pred_pos),
    }


def _bucketed_counts(
    y_true: Array, y_pred: Array, weights: Array, thresholds: np.ndarray, multi_label: bool
) -> State:
    n = len(thresholds)
    with_epsilon = bool(thresholds[0] < 0.0 or thresholds[-1] > 1.0)
    y_pred = jnp.clip(y_pred, 0.0, 1.0)
    y_true = (y_true != 0).astype(jnp.float32)
    if not multi_label:
        y_true, y_pred, weights = y_true.reshape(-1), y_pred.reshape(-1), weights.reshape(-1)
    true_labels = y_true * weights
    false_labels = (1.0 - y_true) * weights
    buckets = jnp.ceil(y_pred * (n - 1)) - 1
    if with_epsilon:
        buckets = jax.nn.relu(buckets)
    buckets = buckets.astype(jnp.int32)

    def per_bucket(labels: Array, ids: Array) -> Array:
        return jax.ops.segment_sum(labels, ids, num_segments=n)

    def above(counts: Array) -> Array:  # reverse cumulative sum over the threshold axis
        return jnp.flip(jnp.cumsum(jnp.flip(counts, -1), axis=-1), -1)

    if multi_label:  # labels on the leading axis, then back to (T, L)
        tp = above(jax.vmap(per_bucket)(true_labels.T, buckets.T)).T
        fp = above(jax.vmap(per_bucket)(false_labels.T, buckets.T)).T
        total_true, total_false = jnp.sum(true_labels, 0), jnp.sum(false_labels, 0)
    else:
        tp = above(per_bucket(true_labels, buckets))
        fp = above(per_bucket(false_labels, buckets))
        total_true, total_false = jnp.sum(true_labels), jnp.sum(false_labels)
    return {"tp": tp, "fp": fp, "tn": total_false - fp, "fn": total_true - tp}


def _summed(
    keys: tuple[str, ...], shape: tuple[int, ...], increments: Callable[..., State]
) -> tuple[Callable[[], State], Callable[..., State]]:
    """`init` and `update` of a metric whose state is float32 counters `keys` of `shape`,
    each batch adding `increments(y_true, y_pred, sample_weight=...)` to them: the
    accumulation every confusion metric shares, so each says only what it counts."""

    def init() -> State:
        return {k: jnp.zeros(shape, jnp.float32) for k in keys}

    def update(state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        counts = increments(y_true, y_pred, sample_weight=sample_weight)
        return {k: state[k] + counts[k] for k in keys}

    return init, update


def _thresholds(spec: schema.Precision | schema.Recall) -> np.ndarray:
    default = 0.5 if spec.top_k is None else NEG_INF
    raw = default if spec.thresholds is None else spec.thresholds
    return np.asarray(raw if isinstance(raw, list) else [raw], dtype=np.float64)


def precision_recall(spec: schema.Precision | schema.Recall) -> Triple:
    """Keras `Precision` / `Recall`: a scalar for one threshold, else one per threshold."""
    thresholds = _thresholds(spec)
    evenly = _evenly_distributed(thresholds)
    other = "fp" if isinstance(spec, schema.Precision) else "fn"
    counts = partial(
        confusion_counts,
        thresholds=thresholds,
        evenly=evenly,
        top_k=spec.top_k,
        class_id=spec.class_id,
    )
    init, update = _summed(("tp", other), (len(thresholds),), counts)

    def result(state: State) -> Array:
        value = divide_no_nan(state["tp"], state["tp"] + state[other])
        return value[0] if len(thresholds) == 1 else value

    return init, update, result


def auc(spec: schema.AUC, num_labels: int | None) -> Triple:
    """Keras `AUC`. `num_labels` sizes the multi-label counters (from the output shape)."""
    if spec.thresholds is not None:
        inner = sorted(spec.thresholds)
        evenly = _evenly_distributed(np.asarray([0.0, *inner, 1.0]))
    else:
        n = spec.num_thresholds
        inner = [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)]
        evenly = True
    thresholds = np.asarray([0.0 - EPSILON, *inner, 1.0 + EPSILON])
    n = len(thresholds)
    labels = spec.num_labels or num_labels
    if spec.multi_label and labels is None:
        raise ValueError("AUC(multi_label=true) needs `num_labels` or the output shape")
    shape = (n, labels) if spec.multi_label else (n,)
    weights = None if spec.label_weights is None else jnp.asarray(spec.label_weights, jnp.float32)

    def counts(y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_pred = jnp.asarray(y_pred).astype(jnp.float32)
        if spec.from_logits:
            y_pred = jax.nn.sigmoid(y_pred)
        return confusion_counts(
            y_true,
            y_pred,
            thresholds,
            evenly=evenly,
            sample_weight=sample_weight,
            multi_label=spec.multi_label,
            label_weights=None if spec.multi_label else weights,
        )

    init, update = _summed(("tp", "fp", "tn", "fn"), shape, counts)

    def aggregate(by_threshold: Array) -> Array:
        if not spec.multi_label:
            return jnp.sum(by_threshold)
        by_label = jnp.sum(by_threshold, axis=0)
        if weights is None:
            return jnp.mean(by_label)
        return divide_no_nan(jnp.sum(by_label * weights), jnp.sum(weights))

    def result(state: State) -> Array:
        tp, fp, tn, fn = state["tp"], state["fp"], state["tn"], state["fn"]
        if spec.curve == "PR" and spec.summation_method == "interpolation":
            return aggregate(_interpolated_pr_terms(tp, fp, fn))
        recall = divide_no_nan(tp, tp + fn)
        if spec.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif spec.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scale = divide_no_nan(tp + fn, tn + fp)
            recall_gain = jnp.where(tp == 0, 0.0, 1.0 - scale * divide_no_nan(fn, tp))
            precision_gain = jnp.where(tp == 0, 1.0, 1.0 - scale * divide_no_nan(fp, tp))
            x, y = jnp.maximum(recall_gain, 0.0), precision_gain
        if spec.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif spec.summation_method == "minoring":
            heights = jnp.minimum(y[: n - 1], y[1:])
        else:
            heights = jnp.maximum(y[: n - 1], y[1:])
        return aggregate((x[: n - 1] - x[1:]) * heights)

    return init, update, result


def _interpolated_pr_terms(tp: Array, fp: Array, fn: Array) -> Array:
    """Davis & Goadrich (2006) interpolation of the PR curve between thresholds."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    prec_slope = divide_no_nan(dtp, jnp.maximum(dp, 0))
    intercept = tp[1:] - prec_slope * p[1:]
    both_positive = (p[:-1] > 0) & (p[1:] > 0)
    ratio = jnp.where(both_positive, divide_no_nan(p[:-1], jnp.maximum(p[1:], 0)), 1.0)
    return divide_no_nan(
        prec_slope * (dtp + intercept * jnp.log(ratio)),
        jnp.maximum(tp[1:] + fn[1:], 0),
    )


def fbeta(spec: schema.F1Score | schema.FBetaScore, num_classes: int | None) -> Triple:
    """Keras `FBetaScore`/`F1Score` on 2-D outputs. With `average: null` the result is the
    per-class vector, as in Keras (a trainer logging scalars must reduce it itself)."""
    beta = spec.beta if isinstance(spec, schema.FBetaScore) else 1.0
    micro = spec.average == "micro"
    if not micro and num_classes is None:
        raise ValueError(f"{spec.type} needs the output shape (number of classes)")
    shape = () if micro else (num_classes,)
    axis = None if micro else 0

    def increments(y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_true = jnp.asarray(y_true).astype(jnp.float32)
        y_pred = jnp.asarray(y_pred).astype(jnp.float32)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                f"{spec.type} expects 2-D (batch, classes) inputs; got y_true {y_true.shape}"
                f" and y_pred {y_pred.shape}"
            )
        if spec.threshold is None:
            top = jnp.max(y_pred, axis=-1, keepdims=True)
            pred = (y_pred >= top) & (jnp.abs(y_pred) > 1e-9)
        else:
            pred = y_pred > spec.threshold
        pred = pred.astype(jnp.float32)
        sw = None if sample_weight is None else jnp.asarray(sample_weight, jnp.float32)

        def wsum(val: Array) -> Array:
            if sw is not None:
                val = val * jnp.expand_dims(sw, 1)
            return jnp.sum(val, axis=axis)

        return {
            "tp": wsum(pred * y_true),
            "fp": wsum(pred * (1 - y_true)),
            "fn": wsum((1 - pred) * y_true),
            "support": wsum(y_true),
        }

    init, update = _summed(("tp", "fp", "fn", "support"), shape, increments)

    def result(state: State) -> Array:
        tp = state["tp"]
        precision = tp / (tp + state["fp"] + EPSILON)
        recall = tp / (tp + state["fn"] + EPSILON)
        score = precision * recall / (beta**2 * precision + recall + EPSILON) * (1 + beta**2)
        if spec.average == "weighted":
            weights = state["support"] / (jnp.sum(state["support"]) + EPSILON)
            return jnp.sum(score * weights)
        if spec.average is not None:
            return jnp.mean(score)
        return score

    return init, update, result
