"""KerasHub's `Perplexity` metric as a pure (init, update, result) triple.

`keras_hub.metrics.Perplexity.update_state` computes, per batch, the summed token
cross-entropy divided by the number of unmasked tokens (the batch's mean), adds it
times the batch size to `aggregate_crossentropy` and the batch size to
`number_of_samples`; `result` is `exp(aggregate / samples)` (0 before any update).

The trainer passes every metric the batch's padding mask as `sample_weight` (1.0 for
real sequences, 0.0 for the rows repeated to fill the last batch), standing for Keras's
smaller last batch. So here that weight says which rows exist: the batch size is its
sum and the mean runs over the tokens of real rows, which gives exactly what KerasHub
computes on the unpadded batch. (KerasHub would treat an explicit (batch,) weight
otherwise, dividing by the sum of the row weights rather than of token weights; modelspec
has no per-sample weights, so that case never arises.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from modelspec.runtime.objective import losses as L
from modelspec.schema.metrics import Perplexity

State = dict[str, jax.Array]


def perplexity(
    spec: Perplexity, y_pred_shape: Sequence[int | None] | None
) -> tuple[Callable[[], State], Callable[..., State], Callable[[State], jax.Array]]:
    """(init, update, result) of `spec` for predictions of `y_pred_shape` (batch axis
    included): KerasHub reads them as (batch, steps, vocabulary), so other ranks are
    refused."""
    if y_pred_shape is not None and len(y_pred_shape) != 3:
        raise ValueError(
            "Perplexity takes token predictions of shape (batch, steps, vocabulary), as "
            f"keras_hub.metrics.Perplexity does; this output has shape {list(y_pred_shape)}"
        )

    def init() -> State:  # two arrays: the train step donates (and reuses) each buffer
        return {
            "aggregate_crossentropy": jnp.zeros((), jnp.float32),
            "number_of_samples": jnp.zeros((), jnp.float32),
        }

    def update(state: State, y_true: Any, y_pred: Any, sample_weight: Any = None) -> State:
        y_true = jnp.asarray(y_true)
        y_pred = jnp.asarray(y_pred).astype(jnp.float32)  # KerasHub's float32 metric dtype
        values = L.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=spec.from_logits
        )  # (batch, steps)
        rows = jnp.ones(values.shape[:1], jnp.float32)
        if sample_weight is not None:
            rows = jnp.broadcast_to(jnp.asarray(sample_weight, jnp.float32), rows.shape)
        tokens = jnp.broadcast_to(rows[:, None], values.shape)
        if spec.mask_token_id is not None:
            tokens = tokens * (y_true != spec.mask_token_id).astype(jnp.float32)
        batch_mean = jnp.sum(values * tokens) / jnp.sum(tokens)  # NaN if all masked, as Keras
        batch = jnp.sum(rows)
        return {
            "aggregate_crossentropy": state["aggregate_crossentropy"] + batch * batch_mean,
            "number_of_samples": state["number_of_samples"] + batch,
        }

    def result(state: State) -> jax.Array:
        samples = state["number_of_samples"]
        mean = L.divide_no_nan(state["aggregate_crossentropy"], samples)
        return jnp.where(samples == 0, 0.0, jnp.exp(mean))

    return init, update, result
