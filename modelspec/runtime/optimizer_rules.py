"""Keras 3's per-optimizer update rules as optax transformations.

Why not `optax.adam` and friends: optax's rules differ from Keras's in small ways that
add up (where epsilon goes, bias-correction arithmetic, Nadam's momentum schedule,
Adafactor's factoring, RMSprop's momentum on the scaled step), and a spec promises Keras
numerics. Each rule here transcribes `update_step` of keras/src/optimizers/<name>.py
operation for operation (same order, same Python-scalar vs float32 constants), with the
optimizer variables (slots) named as Keras names them.

Contract (used by `modelspec.runtime.optimizers`): each rule is an
`optax.GradientTransformationExtraArgs` whose `update(grads, state, params,
learning_rate=..., step=...)` receives `params` *after* Keras's decoupled weight decay,
the current learning rate and Keras's `optimizer.iterations` value (`step`, 0 on the first
update), and returns `delta` such that the new parameters are `params + delta`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from modelspec.schema.optimizers import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    Lamb,
    Lion,
    Nadam,
    OptimizerBase,
    RMSprop,
)

Tree = Any
F32 = jnp.float32


def map_leaves(fn: Callable[..., tuple], tree: Tree, *others: Tree) -> list[Tree]:
    """Apply `fn` leaf-wise over `tree` and same-structured `others`; `fn` returns a
    tuple, and the result is one tree per tuple position."""
    leaves, treedef = jax.tree.flatten(tree)
    other_leaves = [treedef.flatten_up_to(o) for o in others]
    outs = [fn(*args) for args in zip(leaves, *other_leaves, strict=True)]
    return [treedef.unflatten(list(column)) for column in zip(*outs, strict=True)]


def _zeros(params: Tree) -> Tree:
    return jax.tree.map(jnp.zeros_like, params)


def _scalar_zeros(tree: Tree) -> Tree:
    """Placeholder slots for an absent optional state (keeps `map_leaves` uniform)."""
    return jax.tree.map(lambda x: jnp.zeros((), x.dtype), tree)


def _local_step(step: jax.Array, dtype: Any, offset: int = 1) -> jax.Array:
    return (step + offset).astype(dtype)


def _rule(
    init: Callable[[Tree], NamedTuple],
    update: Callable[[Tree, NamedTuple, Tree, jax.Array, jax.Array], tuple[Tree, NamedTuple]],
) -> optax.GradientTransformationExtraArgs:
    def update_fn(grads, state, params=None, *, learning_rate, step, **_):
        if params is None:
            raise ValueError("Keras update rules need the current parameters.")
        if not jax.tree.leaves(params):
            return grads, state
        grads = jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), grads, params)
        return update(grads, state, params, learning_rate, step)

    return optax.GradientTransformationExtraArgs(init, update_fn)


class SGDState(NamedTuple):
    momentum: Tree | None
    """Keras `momentum` slots (absent when `momentum == 0`, as in Keras)."""


def sgd(spec: SGD) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return SGDState(_zeros(params) if spec.momentum != 0 else None)

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

    return _rule(init, update)


class AdamState(NamedTuple):
    momentum: Tree
    velocity: Tree
    velocity_hat: Tree | None
    """Running maximum of `velocity` (AMSGrad only)."""


def adam(spec: Adam) -> optax.GradientTransformationExtraArgs:
    """Keras `Adam`, and `AdamW` (the same rule; its weight decay is applied before)."""

    def init(params):
        return AdamState(_zeros(params), _zeros(params), _zeros(params) if spec.amsgrad else None)

    def update(grads, state, params, lr, step):
        def leaf(g, m, v, v_hat):
            dt = g.dtype
            t = _local_step(step, dt)
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

        v_hat_in = state.velocity_hat if spec.amsgrad else _scalar_zeros(grads)
        delta, m, v, v_hat = map_leaves(leaf, grads, state.momentum, state.velocity, v_hat_in)
        return delta, AdamState(m, v, v_hat if spec.amsgrad else None)

    return _rule(init, update)


class RMSpropState(NamedTuple):
    velocity: Tree
    momentum: Tree | None
    """Present only when `momentum > 0`."""
    average_gradient: Tree | None
    """Present only when `centered`."""


def rmsprop(spec: RMSprop) -> optax.GradientTransformationExtraArgs:
    use_momentum = spec.momentum > 0

    def init(params):
        return RMSpropState(
            _zeros(params),
            _zeros(params) if use_momentum else None,
            _zeros(params) if spec.centered else None,
        )

    def update(grads, state, params, lr, step):
        rho = spec.rho
        zeros = _scalar_zeros(grads)
        mom_in = state.momentum if use_momentum else zeros
        avg_in = state.average_gradient if spec.centered else zeros

        def leaf(g, vel, mom, avg):
            vel = rho * vel + (1 - rho) * jnp.square(g)
            if spec.centered:
                avg = rho * avg + (1 - rho) * g
                denominator = vel - jnp.square(avg) + spec.epsilon
            else:
                denominator = vel + spec.epsilon
            increment = (lr.astype(g.dtype) * g) / jnp.sqrt(denominator)
            if use_momentum:
                mom = spec.momentum * mom + increment
                return -mom, vel, mom, avg
            return -increment, vel, mom, avg

        delta, vel, mom, avg = map_leaves(leaf, grads, state.velocity, mom_in, avg_in)
        return delta, RMSpropState(
            vel, mom if use_momentum else None, avg if spec.centered else None
        )

    return _rule(init, update)


class AdagradState(NamedTuple):
    accumulator: Tree


def adagrad(spec: Adagrad) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return AdagradState(
            jax.tree.map(lambda p: jnp.full_like(p, spec.initial_accumulator_value), params)
        )

    def update(grads, state, params, lr, step):
        def leaf(g, acc):
            acc = acc + jnp.square(g)
            return -((lr.astype(g.dtype) * g) / jnp.sqrt(acc + spec.epsilon)), acc

        delta, acc = map_leaves(leaf, grads, state.accumulator)
        return delta, AdagradState(acc)

    return _rule(init, update)


class AdadeltaState(NamedTuple):
    accumulated_grad: Tree
    accumulated_delta_var: Tree


def adadelta(spec: Adadelta) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return AdadeltaState(_zeros(params), _zeros(params))

    def update(grads, state, params, lr, step):
        rho = spec.rho

        def rms(x):
            return jnp.sqrt(x + spec.epsilon)

        def leaf(g, acc_g, acc_d):
            acc_g = rho * acc_g + (1 - rho) * jnp.square(g)
            delta_var = -((rms(acc_d) * g) / rms(acc_g))
            acc_d = rho * acc_d + (1 - rho) * jnp.square(delta_var)
            return lr.astype(g.dtype) * delta_var, acc_g, acc_d

        delta, acc_g, acc_d = map_leaves(
            leaf, grads, state.accumulated_grad, state.accumulated_delta_var
        )
        return delta, AdadeltaState(acc_g, acc_d)

    return _rule(init, update)


class AdamaxState(NamedTuple):
    momentum: Tree
    norm: Tree
    """Exponentially weighted infinity norm `u`."""


def adamax(spec: Adamax) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return AdamaxState(_zeros(params), _zeros(params))

    def update(grads, state, params, lr, step):
        def leaf(g, m, u):
            dt = g.dtype
            b1_power = jnp.power(jnp.asarray(spec.beta_1, dt), _local_step(step, dt))
            m = m + (g - m) * (1 - spec.beta_1)
            u = jnp.maximum(spec.beta_2 * u, jnp.abs(g))
            return -((lr.astype(dt) * m) / ((1 - b1_power) * (u + spec.epsilon))), m, u

        delta, m, u = map_leaves(leaf, grads, state.momentum, state.norm)
        return delta, AdamaxState(m, u)

    return _rule(init, update)


class NadamState(NamedTuple):
    momentum: Tree
    velocity: Tree
    u_product: jax.Array
    """Product of the momentum schedule `u_1 * ... * u_t` (a float32 scalar)."""


def nadam(spec: Nadam) -> optax.GradientTransformationExtraArgs:
    def init(params):
        dtype = jax.tree.leaves(params)[0].dtype if jax.tree.leaves(params) else F32
        return NadamState(_zeros(params), _zeros(params), jnp.ones((), dtype))

    def update(grads, state, params, lr, step):
        dtype = state.u_product.dtype
        u_product = (
            state.u_product * spec.beta_1 * (1.0 - 0.5 * jnp.power(0.96, _local_step(step, dtype)))
        )

        def leaf(g, m, v):
            dt = g.dtype
            t, t_next = _local_step(step, dt), _local_step(step, dt, 2)
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

    return _rule(init, update)


class LionState(NamedTuple):
    momentum: Tree


def lion(spec: Lion) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return LionState(_zeros(params))

    def update(grads, state, params, lr, step):
        def leaf(g, m):
            dt = g.dtype
            beta_1, beta_2 = jnp.asarray(spec.beta_1, dt), jnp.asarray(spec.beta_2, dt)
            delta = -(lr.astype(dt) * jnp.sign(m * beta_1 + g * (1.0 - beta_1)))
            return delta, m * beta_2 + g * (1.0 - beta_2)

        delta, m = map_leaves(leaf, grads, state.momentum)
        return delta, LionState(m)

    return _rule(init, update)


class LambState(NamedTuple):
    momentum: Tree
    velocity: Tree


def lamb(spec: Lamb) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return LambState(_zeros(params), _zeros(params))

    def update(grads, state, params, lr, step):
        def leaf(g, p, m, v):
            dt = g.dtype
            t = _local_step(step, dt)
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

        delta, m, v = map_leaves(leaf, grads, params, state.momentum, state.velocity)
        return delta, LambState(m, v)

    return _rule(init, update)


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

    def update(grads, state, params, lr, step):
        def leaf(g, p, r, c, v):
            dt = g.dtype
            t = _local_step(step, dt)
            rho_t = jnp.minimum(lr.astype(dt), 1 / jnp.sqrt(t))
            alpha_t = jnp.maximum(jnp.asarray(spec.epsilon_2, dt), _rms(p)) * rho_t
            grad_sq = jnp.square(g) + spec.epsilon_1
            beta_2_t = 1 - jnp.power(t, spec.beta_2_decay)
            if p.ndim >= 2:
                r = beta_2_t * r + (1 - beta_2_t) * jnp.mean(grad_sq, axis=-1)
                c = beta_2_t * c + (1 - beta_2_t) * jnp.mean(grad_sq, axis=-2)
                v_full = jnp.expand_dims(
                    r / jnp.mean(r, axis=-1, keepdims=True), -1
                ) * jnp.expand_dims(c, -2)
            else:
                v = beta_2_t * v + (1 - beta_2_t) * grad_sq
                v_full = v
            u = g / jnp.sqrt(v_full)
            u_hat = u / jnp.maximum(jnp.asarray(1.0, dt), _rms(u) / spec.clip_threshold)
            return -(alpha_t * u_hat), r, c, v

        delta, r, c, v = map_leaves(leaf, grads, params, state.r, state.c, state.v)
        return delta, AdafactorState(r, c, v)

    return _rule(init, update)


RULES: dict[str, Callable[[Any], optax.GradientTransformationExtraArgs]] = {
    "SGD": sgd,
    "Adam": adam,
    "AdamW": adam,
    "RMSprop": rmsprop,
    "Adagrad": adagrad,
    "Adadelta": adadelta,
    "Adamax": adamax,
    "Nadam": nadam,
    "Lion": lion,
    "Lamb": lamb,
    "Adafactor": adafactor,
}
"""Keras optimizer class name -> update-rule factory."""


def update_rule(spec: OptimizerBase) -> optax.GradientTransformationExtraArgs:
    """The Keras update rule for `spec` (see the module docstring for the contract)."""
    return RULES[spec.type](spec)
