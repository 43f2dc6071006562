"""Optimizer specs -> optax transformations with Keras 3's exact step semantics.

One `optimizer.apply(grads)` of Keras 3 (JAX backend, keras/src/optimizers/
base_optimizer.py and keras/src/backend/jax/optimizer.py) does, in this order:

1. learning rate = schedule(`_iterations`) (the count *before* this step);
2. with `gradient_accumulation_steps=N`: add the gradients to an accumulator; only every
   N-th call continues with the accumulated average (other calls change neither the
   weights nor the optimizer variables);
3. clip the gradients (`clipnorm` per tensor, `global_clipnorm`, or `clipvalue`);
4. decoupled weight decay on every non-excluded variable: `var -= var * wd * lr`
   (before, and visible to, the update rule: Lamb and Adafactor read the weights);
5. the optimizer's update rule, with `iterations = _iterations // N` for bias correction;
6. EMA (`use_ema`): `ema = m * ema + (1 - m) * var`, `m = 0` while `iterations == 0`
   else `ema_momentum`; then every `ema_overwrite_frequency` steps `var = ema`;
7. `_iterations += 1`.

`build_optimizer` reproduces that as a single `optax.GradientTransformationExtraArgs`.
It cannot be a flat `optax.chain`: weight decay must change the parameters the update
rule sees, the learning rate is shared by several stages, and accumulation gates all of
them. So the state is a `KerasOptimizerState` holding the shared pieces (`iterations`,
`lr_scale`, the accumulator, the EMA) and, under `transforms`, an `optax.named_chain`
state with readable names (`"clip"`, then the Keras class name lower-cased: `"adam"`,
`"sgd"`...) holding the update rule's slots named as Keras names them
(`momentum`, `velocity`...).

Learning-rate changes at run time (ReduceLROnPlateau): the state carries `lr_scale`, a
float32 scalar multiplied into the scheduled learning rate (also for weight decay, as
Keras's assignable learning rate is). `set_lr_scale` replaces it; the array keeps its
shape and dtype, so a jitted step does not recompile. This also works with a schedule,
where Keras itself would refuse to set the learning rate.

EMA: `ema_params(opt_state)` returns the averaged parameters (same structure as the
params) for the trainer to swap in at the end (Keras `finalize_variable_values`); the
periodic `ema_overwrite_frequency` overwrite happens inside `update`, as in Keras.
"""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from modelspec.runtime.optim.rules import update_rule
from modelspec.runtime.optim.schedules import build_schedule
from modelspec.schema.optimizers import Optimizer, OptimizerSpec

Tree = Any
F32 = jnp.float32


class KerasOptimizerState(NamedTuple):
    """State of a `build_optimizer` transformation."""

    iterations: jax.Array
    """int32 calls to `update` so far (Keras `optimizer._iterations`; under gradient
    accumulation it counts micro-steps, and Keras's `iterations` is this // N)."""
    lr_scale: jax.Array
    """float32 multiplier of the scheduled learning rate, settable from the host."""
    transforms: collections.OrderedDict
    """`optax.named_chain` state: `"clip"` (if clipping) and the update rule's slots."""
    accumulated_grads: Tree | None
    """Sum of the gradients since the last update (gradient accumulation only)."""
    ema: Tree | None
    """Moving average of the parameters (`use_ema` only)."""


def param_path(path: tuple) -> str:
    """A pytree key path as `a/b/0/c`; a trailing `.value` attribute (an `nnx.Variable`
    inside an `nnx.State`) is dropped, so `nnx.split` state and pure state agree."""
    parts = list(path)
    if parts and isinstance(parts[-1], jax.tree_util.GetAttrKey) and parts[-1].name == "value":
        parts.pop()
    names = []
    for key in parts:
        if isinstance(key, jax.tree_util.DictKey):
            names.append(str(key.key))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            names.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            names.append(str(key.idx))
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):
            names.append(str(key.key))
        else:
            names.append(str(key))
    return "/".join(names)


def weight_decay_mask(params: Tree, exclude: tuple[str, ...] | list[str]) -> Tree:
    """True for parameters that get weight decay: those whose `param_path` contains none
    of the `exclude` substrings (Keras matches its `var_names` against variable names)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not any(s in param_path(path) for s in exclude), params
    )


def _clip(spec: OptimizerSpec) -> optax.GradientTransformation:
    """Keras's `_clip_gradients`, stateless; Keras's formulas, not optax's."""

    def update(grads, state, params=None):
        if spec.clipnorm is not None:
            clipnorm = spec.clipnorm

            def by_norm(g):
                l2sum = jnp.sum(jnp.square(g), keepdims=True)
                pred = l2sum > 0
                l2norm = jnp.where(pred, jnp.sqrt(jnp.where(pred, l2sum, 1.0)), l2sum)
                return (g * clipnorm) / jnp.maximum(l2norm, clipnorm)

            return jax.tree.map(by_norm, grads), state
        if spec.global_clipnorm is not None:
            clip = spec.global_clipnorm
            leaves = jax.tree.leaves(grads)
            norm = jnp.sqrt(jnp.sum(jnp.stack([jnp.sum(jnp.square(g)) for g in leaves])))
            scale = clip * jnp.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
            return jax.tree.map(lambda g: g * scale, grads), state
        value = spec.clipvalue
        return jax.tree.map(lambda g: jnp.clip(g, -value, value), grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _weight_decay(params: Tree, mask: Tree, weight_decay: float, lr: jax.Array) -> Tree:
    """Keras's `_apply_weight_decay`: `var - var * wd * lr` on masked parameters."""

    def leaf(p, use):
        if not use:
            return p
        return p - p * jnp.asarray(weight_decay, p.dtype) * lr.astype(p.dtype)

    return jax.tree.map(leaf, params, mask)


def build_optimizer(spec: Optimizer) -> optax.GradientTransformationExtraArgs:
    """An optax transformation whose updates reproduce Keras 3's `optimizer.apply` for
    `spec` exactly (see the module docstring). `update` needs `params`; the updates
    already include weight decay, learning rate and the periodic EMA overwrite, so the
    new parameters are `optax.apply_updates(params, updates)`."""
    schedule = build_schedule(spec.learning_rate)
    stages = []
    if any(v is not None for v in (spec.clipnorm, spec.global_clipnorm, spec.clipvalue)):
        stages.append(("clip", _clip(spec)))
    stages.append((spec.type.lower(), update_rule(spec)))
    chain = optax.named_chain(*stages)
    accumulation = spec.gradient_accumulation_steps
    weight_decay = spec.weight_decay
    exclude = tuple(spec.exclude_from_weight_decay)

    def init(params: Tree) -> KerasOptimizerState:
        return KerasOptimizerState(
            iterations=jnp.zeros((), jnp.int32),
            lr_scale=jnp.ones((), F32),
            transforms=chain.init(params),
            accumulated_grads=jax.tree.map(jnp.zeros_like, params) if accumulation else None,
            # Keras starts the average at zeros, but its first update uses momentum 0, so
            # starting from the parameters gives the same numbers and a usable
            # `ema_params` before the first step.
            ema=jax.tree.map(jnp.array, params) if spec.use_ema else None,
        )

    def apply_step(grads, chain_state, params, lr, step):
        if weight_decay is not None:
            params = _weight_decay(params, weight_decay_mask(params, exclude), weight_decay, lr)
        delta, chain_state = chain.update(grads, chain_state, params, learning_rate=lr, step=step)
        return jax.tree.map(lambda p, d: p + d, params, delta), chain_state

    def update(grads, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("Keras-style optimizers need `params` in `update`.")
        raw_step = state.iterations
        step = raw_step // accumulation if accumulation else raw_step
        lr = (schedule(raw_step) * state.lr_scale).astype(F32)
        accumulated = None
        if accumulation:
            is_update_step = (raw_step + 1) % accumulation == 0
            summed = jax.tree.map(lambda g, a: g + a, grads, state.accumulated_grads)
            accumulated = jax.tree.map(
                lambda s: jnp.where(is_update_step, jnp.zeros_like(s), s), summed
            )
            new_params, chain_state = jax.lax.cond(
                is_update_step,
                lambda: apply_step(
                    jax.tree.map(lambda s: s / accumulation, summed),
                    state.transforms,
                    params,
                    lr,
                    step,
                ),
                lambda: (params, state.transforms),
            )
        else:
            new_params, chain_state = apply_step(grads, state.transforms, params, lr, step)
        ema = None
        if spec.use_ema:
            ema, new_params = _ema_step(spec, state.ema, new_params, step)
        updates = jax.tree.map(lambda new, old: new - old, new_params, params)
        return updates, KerasOptimizerState(
            raw_step + 1, state.lr_scale, chain_state, accumulated, ema
        )

    return optax.GradientTransformationExtraArgs(init, update)


def _ema_step(spec: OptimizerSpec, ema: Tree, params: Tree, step: jax.Array) -> tuple[Tree, Tree]:
    """Keras's `_update_model_variables_moving_average` and the overwrite that follows."""

    def average(a, p):
        momentum = (step != 0).astype(p.dtype) * spec.ema_momentum
        return momentum * a + (1 - momentum) * p

    ema = jax.tree.map(average, ema, params)
    if spec.ema_overwrite_frequency is not None:
        overwrite = (step + 1) % spec.ema_overwrite_frequency == 0
        params = jax.tree.map(lambda a, p: jnp.where(overwrite, a, p), ema, params)
    return ema, params


def _is_state(x: Any) -> bool:
    return isinstance(x, KerasOptimizerState)


def _find_state(opt_state: Any) -> KerasOptimizerState:
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_state) if _is_state(s)]
    if len(found) != 1:
        raise ValueError(
            f"Expected exactly one KerasOptimizerState in the optimizer state; found {len(found)}."
        )
    return found[0]


def _value(x: Any) -> Any:
    """Unwrap an `nnx.Variable` (nnx.Optimizer wraps optimizer-state leaves)."""
    return x.get_value() if isinstance(x, nnx.Variable) else x


def _pure(tree: Tree) -> Tree:
    return jax.tree.map(_value, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def set_lr_scale(opt_state: Any, scale: float | jax.Array) -> Any:
    """Return `opt_state` with the learning-rate multiplier set to `scale` (for
    ReduceLROnPlateau & co). Works on a `KerasOptimizerState` anywhere inside
    `opt_state`; if its leaves are `nnx.Variable`s (an `nnx.Optimizer`'s `opt_state`)
    the variable is updated in place and the same object returned. No recompilation:
    the new value has the old shape and dtype."""
    value = jnp.asarray(scale, F32)

    def replace(node: Any) -> Any:
        if not _is_state(node):
            return node
        if isinstance(node.lr_scale, nnx.Variable):
            node.lr_scale.set_value(value)
            return node
        return node._replace(lr_scale=value)

    return jax.tree.map(replace, opt_state, is_leaf=_is_state)


def get_lr_scale(opt_state: Any) -> float:
    """The current learning-rate multiplier."""
    return float(_value(_find_state(opt_state).lr_scale))


def current_learning_rate(opt_state: Any, spec: Optimizer) -> jax.Array:
    """The learning rate the next `update` will use (Keras `optimizer.learning_rate`):
    the schedule at the current `iterations`, times `lr_scale`."""
    state = _find_state(opt_state)
    schedule = build_schedule(spec.learning_rate)
    return (schedule(_value(state.iterations)) * _value(state.lr_scale)).astype(F32)


def iterations(opt_state: Any) -> int:
    """Calls to `update` so far (Keras `optimizer._iterations`)."""
    return int(_value(_find_state(opt_state).iterations))


def ema_params(opt_state: Any) -> Tree | None:
    """The moving average of the parameters (same structure as the params, plain
    arrays), or None without `use_ema`. Swap it into the model at the end of training
    (Keras `finalize_variable_values`)."""
    ema = _find_state(opt_state).ema
    return None if ema is None else _pure(ema)
