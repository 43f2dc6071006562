"""Keras update rules that scale the step by the parameter's own size: Lamb (a
per-tensor trust ratio) and Adafactor (factored second moments, a relative step).
See `rules` for the contract."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from modelspec.runtime.optim.rules import Tree, local_step, slot_rule
from modelspec.schema.optimizers import Adafactor, Lamb


class LambState(NamedTuple):
    momentum: Tree
    velocity: Tree


def lamb(spec: Lamb) -> optax.GradientTransformationExtraArgs:
    def leaf(lr, step, g, p, m, v):
        dt = g.dtype
        t = local_step(step, dt)
        b1_power = jnp.power(jnp.asarray(spec.beta_1, dt), t)
        b2_power = jnp.power(jnp.asarray(spec.beta_2, dt), t)
        m = m + (g - m) * (1 - spec.beta_1)
        v = v + (jnp.square(g) - v) * (1 - spec.beta_2)
        m_hat = m / (1.0 - b1_power)
        v_sqrt = jnp.sqrt(v / (1.0 - b2_power)) + spec.epsilon
        step_dir = m_hat / v_sqrt
        w_norm = jnp.sqrt(jnp.sum(jnp.square(p)))
        g_norm = jnp.sqrt(jnp.sum(jnp.square(step_dir)))
        ratio = jnp.where(w_norm > 0, jnp.where(g_norm > 0, w_norm / g_norm, 1.0), 1.0)
        return -(ratio * lr.astype(dt) * step_dir), m, v

    return slot_rule(LambState, leaf, with_params=True)


class AdafactorState(NamedTuple):
    r: Tree
    """Row statistics of factored (>= 2-D) parameters; a scalar 0 for others."""
    c: Tree
    """Column statistics of factored (>= 2-D) parameters; a scalar 0 for others."""
    v: Tree
    """Second moment of 0/1-D parameters; a scalar 0 for factored ones (Keras stores
    the full product `v` there too, but recomputes it from `r` and `c` every step)."""


def adafactor(spec: Adafactor) -> optax.GradientTransformationExtraArgs:
    """Keras `Adafactor`. Keras caps the step size at `1/sqrt(step)` both when
    `relative_step` is set and unconditionally (`rho_t`), so the flag changes nothing."""

    def _rms(x):
        return jnp.sqrt(jnp.mean(jnp.square(x)))

    def init(params):
        def slot(p, shape):
            return jnp.zeros(shape if p.ndim >= 2 else (), p.dtype)

        return AdafactorState(
            r=jax.tree.map(lambda p: slot(p, p.shape[:-1]), params),
            c=jax.tree.map(lambda p: slot(p, p.shape[:-2] + p.shape[-1:]), params),
            v=jax.tree.map(lambda p: jnp.zeros(p.shape if p.ndim < 2 else (), p.dtype), params),
        )

    def leaf(lr, step, g, p, r, c, v):
        dt = g.dtype
        t = local_step(step, dt)
        rho_t = jnp.minimum(lr.astype(dt), 1 / jnp.sqrt(t))
        alpha_t = jnp.maximum(jnp.asarray(spec.epsilon_2, dt), _rms(p)) * rho_t
        grad_sq = jnp.square(g) + spec.epsilon_1
        beta_2_t = 1 - jnp.power(t, spec.beta_2_decay)
        if p.ndim >= 2:
            r = beta_2_t * r + (1 - beta_2_t) * jnp.mean(grad_sq, axis=-1)
            c = beta_2_t * c + (1 - beta_2_t) * jnp.mean(grad_sq, axis=-2)
            row = jnp.expand_dims(r / jnp.mean(r, axis=-1, keepdims=True), -1)
            v_full = row * jnp.expand_dims(c, -2)
        else:
            v = beta_2_t * v + (1 - beta_2_t) * grad_sq
            v_full = v
        u = g / jnp.sqrt(v_full)
        u_hat = u / jnp.maximum(jnp.asarray(1.0, dt), _rms(u) / spec.clip_threshold)
        return -(alpha_t * u_hat), r, c, v

    return slot_rule(AdafactorState, leaf, init=init, with_params=True)
