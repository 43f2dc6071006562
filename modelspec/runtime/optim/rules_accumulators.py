"""Keras update rules that divide the step by an accumulated squared gradient: RMSprop,
Adagrad, Adadelta. See `rules` for the contract."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from modelspec.runtime.optim.rules import (
    Tree,
    map_leaves,
    rule,
    scalar_zeros,
    slot_rule,
    zeros,
)
from modelspec.schema.optimizers import Adadelta, Adagrad, RMSprop


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
            zeros(params),
            zeros(params) if use_momentum else None,
            zeros(params) if spec.centered else None,
        )

    def update(grads, state, params, lr, step):
        rho = spec.rho
        absent = scalar_zeros(grads)
        mom_in = state.momentum if use_momentum else absent
        avg_in = state.average_gradient if spec.centered else absent

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

    return rule(init, update)


class AdagradState(NamedTuple):
    accumulator: Tree


def adagrad(spec: Adagrad) -> optax.GradientTransformationExtraArgs:
    def init(params):
        return AdagradState(
            jax.tree.map(lambda p: jnp.full_like(p, spec.initial_accumulator_value), params)
        )

    def leaf(lr, step, g, acc):
        acc = acc + jnp.square(g)
        return -((lr.astype(g.dtype) * g) / jnp.sqrt(acc + spec.epsilon)), acc

    return slot_rule(AdagradState, leaf, init=init)


class AdadeltaState(NamedTuple):
    accumulated_grad: Tree
    accumulated_delta_var: Tree


def adadelta(spec: Adadelta) -> optax.GradientTransformationExtraArgs:
    rho = spec.rho

    def rms(x):
        return jnp.sqrt(x + spec.epsilon)

    def leaf(lr, step, g, acc_g, acc_d):
        acc_g = rho * acc_g + (1 - rho) * jnp.square(g)
        delta_var = -((rms(acc_d) * g) / rms(acc_g))
        acc_d = rho * acc_d + (1 - rho) * jnp.square(delta_var)
        return lr.astype(g.dtype) * delta_var, acc_g, acc_d

    return slot_rule(AdadeltaState, leaf)
