"""Dynamic loss scaling, as Keras 3's `LossScaleOptimizer` (which `Model.compile` wraps
around the optimizer when the model's dtype policy is `mixed_float16`).

float16 gradients of small losses underflow to zero; multiplying the loss by a large
scale before differentiating keeps them representable. Keras's rule
(keras/src/optimizers/loss_scale_optimizer.py), reproduced here:

- the scale starts at `initial_scale` (2**15) and the train step differentiates
  `loss * scale` (`scale_loss`);
- if every gradient is finite, they are divided by the scale and the inner optimizer
  applies them; after `dynamic_growth_steps` (2000) such steps in a row the scale
  doubles (the step counter then restarts);
- otherwise the update is skipped entirely (weights and the inner optimizer's state,
  its iteration count included, stay as they were), the scale halves and the counter
  restarts.

The scale and the counter live in the optimizer state (`LossScaleState`), so they are
part of the TrainState every checkpoint holds, and a resumed run continues with the
scale it had. Learning-rate helpers (`set_lr_scale`, `iterations`) find the inner
Keras state inside it unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

INITIAL_SCALE = 2.0**15
DYNAMIC_GROWTH_STEPS = 2000


class LossScaleState(NamedTuple):
    """State of `loss_scale_optimizer`: Keras's `dynamic_scale` and `step_counter`."""

    dynamic_scale: jax.Array
    """float32 factor the loss is multiplied by before differentiating."""
    step_counter: jax.Array
    """int32 finite steps since the scale last changed."""
    inner: Any
    """The wrapped optimizer's state."""


def loss_scale_optimizer(
    inner: optax.GradientTransformation,
    initial_scale: float = INITIAL_SCALE,
    dynamic_growth_steps: int = DYNAMIC_GROWTH_STEPS,
) -> optax.GradientTransformationExtraArgs:
    """Wrap `inner`: `update` takes the gradients of the *scaled* loss and returns zero
    updates (and the old inner state) when any of them is not finite."""

    def init(params: Any) -> LossScaleState:
        return LossScaleState(
            jnp.asarray(initial_scale, jnp.float32), jnp.zeros((), jnp.int32), inner.init(params)
        )

    def update(grads, state: LossScaleState, params=None, **extra):
        leaves = jax.tree.leaves(grads)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
        scale = state.dynamic_scale
        unscaled = jax.tree.map(lambda g: g / scale.astype(g.dtype), grads)
        updates, inner_state = inner.update(unscaled, state.inner, params, **extra)
        # Skipped step: nothing moves; select rather than branch (one compiled step).
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        inner_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old), inner_state, state.inner
        )
        grow = finite & (state.step_counter == dynamic_growth_steps - 1)
        new_scale = jnp.where(finite, jnp.where(grow, scale * 2.0, scale), scale * 0.5)
        counter = jnp.where(finite & ~grow, state.step_counter + 1, 0).astype(jnp.int32)
        return updates, LossScaleState(new_scale, counter, inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


def _is_state(x: Any) -> bool:
    return isinstance(x, LossScaleState)


def find_loss_scale(opt_state: Any) -> jax.Array | None:
    """The current loss scale (a float32 scalar array), or None without loss scaling."""
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_state) if _is_state(s)]
    return found[0].dynamic_scale if found else None


def scaled_value_and_grad(loss_fn: Any, scale: jax.Array | None) -> Any:
    """`jax.value_and_grad(loss_fn, has_aux=True)`, differentiating `loss * scale`
    (Keras's `scale_loss`) when `scale` is not None; the value returned stays the
    unscaled loss, for the metrics."""
    if scale is None:
        return jax.value_and_grad(loss_fn, has_aux=True)

    def scaled(params):
        loss, aux = loss_fn(params)
        return loss * scale.astype(loss.dtype), (loss, aux)

    def run(params):
        (_, (loss, aux)), grads = jax.value_and_grad(scaled, has_aux=True)(params)
        return (loss, aux), grads

    return run


def uses_loss_scaling(spec: Any) -> bool:
    """Keras's `compile(auto_scale_loss=True)`: the model's policy is `mixed_float16`."""
    return spec.model.dtype_policy == "mixed_float16"
