"""Keras update rules driven by moving averages of the gradient (momentum) and of its
square: SGD, Adam (and AdamW), Adamax, Nadam, Lion. See `rules` for the contract."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from modelspec.runtime.optim.rules import (
    F32,
    Tree,
    local_step,
    map_leaves,
    rule,
    scalar_zeros,
    slot_rule,
    zeros,
)
from modelspec.schema.optimizers import SGD, Adam, Adamax, Lion, Nadam


class SGDState(NamedTuple):
    momentum: Tree | None
    """Keras `momentum` slots (absent when `momentum == 0`, as in Keras)."""


def sgd(spec: SGD) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return SGDState(zeros(params) if spec.momentum != 0 else None)

    def update(grads, state, params, lr, step):
        if state.momentum is None:
            delta = jax.tree.map(lambda g: -(g * lr.astype(g.dtype)), grads)
            return delta, state

        def leaf(g, m):
            lr_ = lr.astype(g.dtype)
            mom = jnp.asarray(spec.momentum, g.dtype)
            m = m * mom - g * lr_
            return (m * mom - g * lr_ if spec.nesterov else m), m

        delta, m = map_leaves(leaf, grads, state.momentum)
        return delta, SGDState(m)

    return rule(init, update)


class AdamState(NamedTuple):
    momentum: Tree
    velocity: Tree
    velocity_hat: Tree | None
    """Running maximum of `velocity` (AMSGrad only)."""


def adam(spec: Adam) -> optax.GradientTransformationExtraArgs:
    """Keras `Adam`, and `AdamW` (the same rule; its weight decay is applied before)."""

    def init(params):
        return AdamState(zeros(params), zeros(params), zeros(params) if spec.amsgrad else None)

    def update(grads, state, params, lr, step):
        def leaf(g, m, v, v_hat):
            dt = g.dtype
            t = local_step(step, dt)
            b1_power = jnp.power(jnp.asarray(spec.beta_1, dt), t)
            b2_power = jnp.power(jnp.asarray(spec.beta_2, dt), t)
            alpha = lr.astype(dt) * jnp.sqrt(1 - b2_power) / (1 - b1_power)
            m = m + (g - m) * (1 - spec.beta_1)
            v = v + (jnp.square(g) - v) * (1 - spec.beta_2)
            denominator_v = v
            if spec.amsgrad:
                v_hat = jnp.maximum(v_hat, v)
                denominator_v = v_hat
            return -((m * alpha) / (jnp.sqrt(denominator_v) + spec.epsilon)), m, v, v_hat

        v_hat_in = state.velocity_hat if spec.amsgrad else scalar_zeros(grads)
        delta, m, v, v_hat = map_leaves(leaf, grads, state.momentum, state.velocity, v_hat_in)
        return delta, AdamState(m, v, v_hat if spec.amsgrad else None)

    return rule(init, update)


class AdamaxState(NamedTuple):
    momentum: Tree
    norm: Tree
    """Exponentially weighted infinity norm `u`."""


def adamax(spec: Adamax) -> optax.GradientTransformationExtraArgs:
    def leaf(lr, step, g, m, u):
        dt = g.dtype
        b1_power = jnp.power(jnp.asarray(spec.beta_1, dt), local_step(step, dt))
        m = m + (g - m) * (1 - spec.beta_1)
        u = jnp.maximum(spec.beta_2 * u, jnp.abs(g))
        return -((lr.astype(dt) * m) / ((1 - b1_power) * (u + spec.epsilon))), m, u

    return slot_rule(AdamaxState, leaf)


class NadamState(NamedTuple):
    momentum: Tree
    velocity: Tree
    u_product: jax.Array
    """Product of the momentum schedule `u_1 * ... * u_t` (a float32 scalar)."""


def nadam(spec: Nadam) -> optax.GradientTransformationExtraArgs:
    def init(params):
        dtype = jax.tree.leaves(params)[0].dtype if jax.tree.leaves(params) else F32
        return NadamState(zeros(params), zeros(params), jnp.ones((), dtype))

    def update(grads, state, params, lr, step):
        dtype = state.u_product.dtype
        u_product = (
            state.u_product * spec.beta_1 * (1.0 - 0.5 * jnp.power(0.96, local_step(step, dtype)))
        )

        def leaf(g, m, v):
            dt = g.dtype
            t, t_next = local_step(step, dt), local_step(step, dt, 2)
            decay = jnp.asarray(0.96, dt)
            beta_1, beta_2 = jnp.asarray(spec.beta_1, dt), jnp.asarray(spec.beta_2, dt)
            u_t = beta_1 * (1.0 - 0.5 * jnp.power(decay, t))
            u_t_1 = beta_1 * (1.0 - 0.5 * jnp.power(decay, t_next))
            u_product_t = u_product.astype(dt)
            u_product_t_1 = u_product_t * u_t_1
            b2_power = jnp.power(beta_2, t)
            m = m + (g - m) * (1 - beta_1)
            v = v + (jnp.square(g) - v) * (1 - beta_2)
            m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product_t)
            v_hat = v / (1 - b2_power)
            return -((m_hat * lr.astype(dt)) / (jnp.sqrt(v_hat) + spec.epsilon)), m, v

        delta, m, v = map_leaves(leaf, grads, state.momentum, state.velocity)
        return delta, NadamState(m, v, u_product)

    return rule(init, update)


class LionState(NamedTuple):
    momentum: Tree


def lion(spec: Lion) -> optax.GradientTransformationExtraArgs:
    def leaf(lr, step, g, m):
        dt = g.dtype
        beta_1, beta_2 = jnp.asarray(spec.beta_1, dt), jnp.asarray(spec.beta_2, dt)
        delta = -(lr.astype(dt) * jnp.sign(m * beta_1 + g * (1.0 - beta_1)))
        return delta, m * beta_2 + g * (1.0 - beta_2)

    return slot_rule(LionState, leaf)
