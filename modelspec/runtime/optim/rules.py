"""Keras 3's per-optimizer update rules as optax transformations.

Why not `optax.adam` and friends: optax's rules differ from Keras's in small ways that
add up (where epsilon goes, bias-correction arithmetic, Nadam's momentum schedule,
Adafactor's factoring, RMSprop's momentum on the scaled step), and a spec promises Keras
numerics. Each rule here transcribes `update_step` of keras/src/optimizers/<name>.py
operation for operation (same order, same Python-scalar vs float32 constants), with the
optimizer variables (slots) named as Keras names them.

Contract (used by `modelspec.runtime.optim.optimizers`): each rule is an
`optax.GradientTransformationExtraArgs` whose `update(grads, state, params,
learning_rate=..., step=...)` receives `params` *after* Keras's decoupled weight decay,
the current learning rate and Keras's `optimizer.iterations` value (`step`, 0 on the first
update), and returns `delta` such that the new parameters are `params + delta`.

This module holds the contract's shared helpers and `update_rule`, which runs the rule an
optimizer spec names in its `update_rule` class variable; the rules live by family in
`rules_momentum` (SGD, Adam/AdamW, Adamax, Nadam, Lion), `rules_accumulators` (RMSprop,
Adagrad, Adadelta) and `rules_scaled` (Lamb, Adafactor).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from modelspec.schema.optimizers import OptimizerSpec
from modelspec.schema.vocabulary import load_reference

Tree = Any
F32 = jnp.float32


def map_leaves(fn: Callable[..., tuple], tree: Tree, *others: Tree) -> list[Tree]:
    """Apply `fn` leaf-wise over `tree` and same-structured `others`; `fn` returns a
    tuple, and the result is one tree per tuple position."""
    leaves, treedef = jax.tree.flatten(tree)
    other_leaves = [treedef.flatten_up_to(o) for o in others]
    outs = [fn(*args) for args in zip(leaves, *other_leaves, strict=True)]
    return [treedef.unflatten(list(column)) for column in zip(*outs, strict=True)]


def zeros(params: Tree) -> Tree:
    """A zero slot per parameter (Keras creates its optimizer variables as zeros)."""
    return jax.tree.map(jnp.zeros_like, params)


def scalar_zeros(tree: Tree) -> Tree:
    """Placeholder slots for an absent optional state (keeps `map_leaves` uniform)."""
    return jax.tree.map(lambda x: jnp.zeros((), x.dtype), tree)


def local_step(step: jax.Array, dtype: Any, offset: int = 1) -> jax.Array:
    """Keras's `local_step = iterations + 1` (bias corrections count from 1), in `dtype`."""
    return (step + offset).astype(dtype)


def rule(
    init: Callable[[Tree], NamedTuple],
    update: Callable[[Tree, NamedTuple, Tree, jax.Array, jax.Array], tuple[Tree, NamedTuple]],
) -> optax.GradientTransformationExtraArgs:
    """Wrap a rule's `init` and `update(grads, state, params, lr, step)` in the contract:
    `params` are required, an empty tree passes through, gradients take the dtype of
    their parameter."""

    def update_fn(grads, state, params=None, *, learning_rate, step, **_):
        if params is None:
            raise ValueError("Keras update rules need the current parameters.")
        if not jax.tree.leaves(params):
            return grads, state
        grads = jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), grads, params)
        return update(grads, state, params, learning_rate, step)

    return optax.GradientTransformationExtraArgs(init, update_fn)


def slot_rule(
    state_type: type[Any],
    leaf: Callable[..., tuple],
    *,
    init: Callable[[Tree], NamedTuple] | None = None,
    with_params: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """A rule whose state is one slot tree per field of the NamedTuple `state_type`, every
    slot updated leaf by leaf: `leaf(lr, step, g, [p,] *slots) -> (delta, *new_slots)`
    (`p`, the parameter, only `with_params`). The slots start as zeros unless `init`
    says otherwise. Most Keras rules have this shape; stating it once leaves each of
    them only its per-leaf arithmetic."""

    def zero_slots(params: Tree) -> NamedTuple:
        return state_type(*(zeros(params) for _ in state_type._fields))

    def update(grads, state, params, lr, step):
        extra = (params,) if with_params else ()
        delta, *slots = map_leaves(partial(leaf, lr, step), grads, *extra, *state)
        return delta, state_type(*slots)

    return rule(init or zero_slots, update)


def update_rule(spec: OptimizerSpec) -> optax.GradientTransformationExtraArgs:
    """The Keras update rule for `spec` (see the module docstring for the contract)."""
    return load_reference(spec.update_rule)(spec)
