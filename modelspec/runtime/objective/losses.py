"""Keras 3 losses as pure JAX functions, so a spec trains to the numbers Keras would give.

`build_loss(spec)` returns a `LossFn`: calling it is calling the Keras loss object
(`keras.losses.X(...)(y_true, y_pred, sample_weight)`): the per-sample loss (Keras's
`Loss.call`, after the same squeeze/expand of a trailing 1-axis), then sample weights
and the reduction exactly as `keras.src.losses.loss.reduce_weighted_values` does them.
The per-sample values are exposed too (`LossFn.per_sample`), for trainers that build
their own reduction over padding masks.

Numerics follow Keras's JAX backend: probabilities are renormalized and clipped to
[1e-7, 1 - 1e-7] when `from_logits=False`; logits go through `log_softmax`/`log_sigmoid`.
Two deliberate differences, neither of which changes a forward value: everything is
computed in float32 (as Keras's default float policy does), and positions dropped by
`ignore_class` never pass through a 0/0, so their gradient is 0 rather than NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from pydantic import TypeAdapter

from modelspec.schema import losses as schema

Array = jax.Array
EPSILON = 1e-7
"""Keras's `backend.epsilon()`: the clip margin for probabilities and normalizations."""


def squeeze_or_expand_to_same_rank(
    x1: Array, x2: Array, expand_rank_1: bool = True
) -> tuple[Array, Array]:
    """Keras's rule for ranks that differ by one trailing 1-axis (e.g. (B,) vs (B, 1))."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def divide_no_nan(x: Array, y: Array) -> Array:
    """x / y, and 0 where y == 0 (with a finite gradient there)."""
    zero = y == 0
    return jnp.where(zero, 0.0, x / jnp.where(zero, 1.0, y))


def l2_normalize(x: Array, axis: int = -1) -> Array:
    """`keras.ops.normalize(x, axis, order=2)`: x * min(rsqrt(sum(x^2)), 1/epsilon)."""
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jnp.minimum(jax.lax.rsqrt(square_sum), 1.0 / EPSILON)


def _float(x: Any) -> Array:
    return jnp.asarray(x).astype(jnp.float32)


def _same_shape(loss: str, y_true: Array, y_pred: Array) -> None:
    """Keras raises here rather than silently broadcasting (B,) against (B, 1)."""
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{loss}: y_true and y_pred must have the same shape; got {y_true.shape} and "
            f"{y_pred.shape}"
        )


def _smoothed_labels(
    loss: str, y_true: Array, y_pred: Array, label_smoothing: float, classes: int | None
) -> Array:
    """`y_true`, checked against `y_pred` and in its dtype, with Keras's label smoothing
    towards the uniform distribution over `classes` (2 for binary cross-entropy; None:
    the size of the last axis, for categorical): one rule for both cross-entropies."""
    _same_shape(loss, y_true, y_pred)
    y_true = y_true.astype(y_pred.dtype)
    if label_smoothing:
        num_classes = y_true.shape[-1] if classes is None else classes
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    return y_true


def _log_probs(y_pred: Array, from_logits: bool, axis: int) -> Array:
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=axis)
    probs = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
    return jnp.log(jnp.clip(probs, EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Per-sample categorical cross-entropy (Keras: smoothing uses the last axis size)."""
    y_true = _smoothed_labels("categorical_crossentropy", y_true, y_pred, label_smoothing, None)
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits, axis), axis=axis)


def _sparse_labels(y_true: Array, y_pred: Array, axis: int) -> Array:
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = jnp.squeeze(y_true, axis)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    return y_true


def ignore_class_mask(y_true: Array, y_pred: Array, ignore_class: int, axis: int = -1) -> Array:
    """Boolean mask (shape of the per-sample loss) of positions whose label is kept."""
    labels = _sparse_labels(y_true, y_pred, axis)
    return labels.astype(jnp.float32) != float(ignore_class)


def sparse_categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Array:
    """Per-sample cross-entropy of integer labels; labels outside [0, C) give 0 (Keras's
    one-hot of an out-of-range id is all zeros); `ignore_class` positions give 0."""
    labels = _sparse_labels(y_true, y_pred, axis)
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis % y_pred.ndim)
    if labels.shape != expected:
        raise ValueError(
            f"sparse_categorical_crossentropy: labels of shape {expected} expected for "
            f"y_pred of shape {y_pred.shape}; got {y_true.shape}"
        )
    if jnp.issubdtype(labels.dtype, jnp.floating):
        labels = labels.astype(jnp.float32)  # Keras casts y_true to floatx first
    labels = labels.astype(jnp.int32)
    axis = axis % y_pred.ndim
    num_classes = y_pred.shape[axis]
    log_probs = _log_probs(y_pred, from_logits, axis)
    in_range = (labels >= 0) & (labels < num_classes)
    index = jnp.expand_dims(jnp.clip(labels, 0, num_classes - 1), axis)
    picked = jnp.squeeze(jnp.take_along_axis(log_probs, index, axis=axis), axis)
    values = jnp.where(in_range, -picked, 0.0)
    if ignore_class is not None:
        values = jnp.where(ignore_class_mask(y_true, y_pred, ignore_class, axis), values, 0.0)
    return values


def binary_crossentropy(
    y_true: Array,
    y_pred: Array,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Element-wise binary cross-entropy, averaged over `axis`."""
    y_true = _smoothed_labels("binary_crossentropy", y_true, y_pred, label_smoothing, 2)
    if from_logits:
        bce = -y_true * jax.nn.log_sigmoid(y_pred) - (1.0 - y_true) * jax.nn.log_sigmoid(-y_pred)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        bce = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(bce, axis=axis)


def mean_squared_error(y_true: Array, y_pred: Array) -> Array:
    """Mean of squared errors over the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true: Array, y_pred: Array) -> Array:
    """Mean of absolute errors over the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1)


def huber(y_true: Array, y_pred: Array, *, delta: float = 1.0) -> Array:
    """Huber loss averaged over the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    error = y_pred - y_true
    abs_error = jnp.abs(error)
    quadratic = 0.5 * jnp.square(error)
    linear = delta * abs_error - 0.5 * delta**2
    return jnp.mean(jnp.where(abs_error <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true: Array, y_pred: Array) -> Array:
    """log(cosh(error)) = x + softplus(-2x) - log 2 (overflow-free), averaged over -1."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    x = y_pred - y_true
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0).astype(x.dtype), axis=-1)


def kl_divergence(y_true: Array, y_pred: Array) -> Array:
    """sum(y_true * log(y_true / y_pred)) over the last axis, both clipped to [eps, 1]."""
    y_true = jnp.clip(y_true.astype(y_pred.dtype), EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def cosine_similarity(y_true: Array, y_pred: Array, *, axis: int = -1) -> Array:
    """Cosine similarity along `axis` (the loss negates it; the metric does not)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.astype(y_pred.dtype), y_pred)
    return jnp.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)


def hinge(y_true: Array, y_pred: Array) -> Array:
    """mean(max(1 - y_true * y_pred, 0)); if every label is 0 or 1 they become -1/+1."""
    y_true = y_true.astype(y_pred.dtype)
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    y_true = jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)
    return jnp.mean(jnp.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)


def per_sample_function(spec: schema.AnyLossSpec) -> Callable[[Array, Array], Array]:
    """The per-sample function of a loss spec, on inputs already cast and rank-matched."""
    match spec:
        case schema.SparseCategoricalCrossentropy():
            return lambda t, p: sparse_categorical_crossentropy(
                t, p, from_logits=spec.from_logits, ignore_class=spec.ignore_class, axis=spec.axis
            )
        case schema.CategoricalCrossentropy():
            return lambda t, p: categorical_crossentropy(
                t,
                p,
                from_logits=spec.from_logits,
                label_smoothing=spec.label_smoothing,
                axis=spec.axis,
            )
        case schema.BinaryCrossentropy():
            return lambda t, p: binary_crossentropy(
                t,
                p,
                from_logits=spec.from_logits,
                label_smoothing=spec.label_smoothing,
                axis=spec.axis,
            )
        case schema.MeanSquaredError():
            return mean_squared_error
        case schema.MeanAbsoluteError():
            return mean_absolute_error
        case schema.Huber():
            return lambda t, p: huber(t, p, delta=spec.delta)
        case schema.LogCosh():
            return log_cosh
        case schema.KLDivergence():
            return kl_divergence
        case schema.CosineSimilarity():
            return lambda t, p: -cosine_similarity(t, p, axis=spec.axis)
        case schema.Hinge():
            return hinge
    raise TypeError(f"Not a loss spec: {spec!r}")


def apply_mask(sample_weight: Array | None, mask: Array | None, reduction: str) -> Array | None:
    """Keras's merge of a boolean mask into the sample weights. For the mean reductions
    valid entries get weight total/valid, so the later division by the element count
    becomes a division by the number of valid entries."""
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        total = jnp.float32(mask.size)
        valid = jnp.sum(mask.astype(jnp.float32))
        float_mask = jnp.where(mask, divide_no_nan(total, valid), 0.0)
    else:
        float_mask = mask.astype(jnp.float32)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight)
    return sample_weight * float_mask


def reduce_weighted_values(
    values: Array,
    sample_weight: Array | None = None,
    mask: Array | None = None,
    reduction: str = "sum_over_batch_size",
) -> Array:
    """`keras.src.losses.loss.reduce_weighted_values` for the scalar reductions."""
    values = _float(values)
    if sample_weight is not None:
        sample_weight = _float(sample_weight)
    sample_weight = apply_mask(sample_weight, mask, reduction)
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * sample_weight
    if values.shape in ((), (0,)):
        return values
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return divide_no_nan(total, jnp.sum(sample_weight))
    return divide_no_nan(total, jnp.float32(values.size))


@dataclass(frozen=True)
class LossFn:
    """A compiled loss. Call it like the Keras loss object; pure and jit-friendly."""

    spec: schema.AnyLossSpec
    """The validated spec it was built from."""
    name: str
    """Keras's default name of the loss object (e.g. `sparse_categorical_crossentropy`)."""

    def per_sample_with_mask(self, y_true: Any, y_pred: Any) -> tuple[Array, Array | None]:
        """Per-sample losses (Keras `Loss.call`) and the `ignore_class` keep-mask (or None)."""
        y_true, y_pred = jnp.asarray(y_true), _float(y_pred)
        sparse = isinstance(self.spec, schema.SparseCategoricalCrossentropy)
        if not (sparse and jnp.issubdtype(y_true.dtype, jnp.integer)):
            y_true = y_true.astype(jnp.float32)  # Keras casts y_true to floatx
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        values = per_sample_function(self.spec)(y_true, y_pred)
        mask = None
        ignore = getattr(self.spec, "ignore_class", None)
        if ignore is not None:
            mask = ignore_class_mask(y_true, y_pred, ignore, self.spec.axis)
        return values, mask

    def per_sample(self, y_true: Any, y_pred: Any) -> Array:
        """Unreduced losses: `y_pred`'s shape without the class/feature axis (ignored
        positions hold 0)."""
        return self.per_sample_with_mask(y_true, y_pred)[0]

    def reduce(self, values: Array, sample_weight: Any = None, mask: Array | None = None) -> Array:
        """Apply sample weights, the mask and this loss's reduction to per-sample values."""
        return reduce_weighted_values(values, sample_weight, mask, self.spec.reduction)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Array:
        """The reduced scalar loss, as `keras_loss(y_true, y_pred, sample_weight)`."""
        values, mask = self.per_sample_with_mask(y_true, y_pred)
        return self.reduce(values, sample_weight, mask)


_LOSS_ADAPTER: TypeAdapter[Any] = TypeAdapter(schema.Loss)


def build_loss(spec: schema.AnyLossSpec | str | Mapping[str, Any]) -> LossFn:
    """Compile a loss spec (a validated model, or the string/mapping a spec file holds)."""
    if not isinstance(spec, schema.LossSpec):
        spec = _LOSS_ADAPTER.validate_python(spec)
    return LossFn(spec=spec, name=spec.keras_name)
