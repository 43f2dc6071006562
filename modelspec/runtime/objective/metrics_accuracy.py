"""Keras's accuracy metrics as per-sample functions (1.0 for a hit, 0.0 for a miss),
averaged by the `Mean` wrapper in `metrics`: exact match, thresholded, arg-max and top-k
matches, transcribed from keras/src/metrics/accuracy_metrics.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.runtime.objective.losses import squeeze_or_expand_to_same_rank

Array = jax.Array


def accuracy(y_true: Array, y_pred: Array) -> Array:
    """1.0 where `y_pred == y_true` exactly (Keras `accuracy`)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    return (y_true == y_pred).astype(jnp.float32)


def binary_accuracy(y_true: Array, y_pred: Array, threshold: float = 0.5) -> Array:
    """1.0 where `(y_pred > threshold)`, cast to y_true's dtype, equals y_true."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == (y_pred > threshold).astype(y_true.dtype)).astype(jnp.float32)


def categorical_accuracy(y_true: Array, y_pred: Array) -> Array:
    """1.0 where the arg-max of `y_pred` equals the arg-max of one-hot `y_true`."""
    labels = jnp.argmax(y_true, axis=-1).astype(y_pred.dtype)
    shape = labels.shape
    reshape = labels.ndim == y_pred.ndim
    if reshape:
        labels = jnp.squeeze(labels, -1)
    matches = (labels == jnp.argmax(y_pred, axis=-1).astype(labels.dtype)).astype(jnp.float32)
    return matches.reshape(shape) if reshape else matches


def sparse_categorical_accuracy(y_true: Array, y_pred: Array) -> Array:
    """1.0 where the arg-max of `y_pred` equals the integer label."""
    labels = y_true.astype(y_pred.dtype)
    shape = labels.shape
    reshape = labels.ndim == y_pred.ndim and labels.shape[-1] == 1
    if reshape:
        labels = jnp.squeeze(labels, -1)
    matches = (labels == jnp.argmax(y_pred, axis=-1).astype(labels.dtype)).astype(jnp.float32)
    if reshape:
        matches = matches.reshape(shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = jnp.squeeze(matches, -1)
    return matches


def in_top_k(targets: Array, predictions: Array, k: int) -> Array:
    """Keras's `ops.in_top_k` (JAX backend): rank of the target's score <= k; ties favor
    the target; a NaN score never counts."""
    at_label = jnp.take_along_axis(predictions, targets[..., None], axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    return 1 + jnp.sum(predictions > at_label, axis=-1) <= k


def _top_k(labels: Array, y_pred: Array, k: int, sorted_ids: bool = False) -> Array:
    shape = labels.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if labels.ndim > 1:
        labels = labels.reshape(-1)
    if sorted_ids:
        matches = jnp.any(labels[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = in_top_k(labels, y_pred, k)
    return matches.astype(jnp.float32).reshape(shape)


def top_k_categorical_accuracy(y_true: Array, y_pred: Array, k: int = 5) -> Array:
    """1.0 where the one-hot label's class is among the k highest scores."""
    return _top_k(jnp.argmax(y_true.astype(y_pred.dtype), -1).astype(jnp.int32), y_pred, k)


def sparse_top_k_categorical_accuracy(
    y_true: Array, y_pred: Array, k: int = 5, from_sorted_ids: bool = False
) -> Array:
    """1.0 where the integer label is among the k highest scores (or first k sorted ids)."""
    labels = y_true.astype(y_pred.dtype if from_sorted_ids else jnp.int32)
    return _top_k(labels, y_pred, k, from_sorted_ids)
