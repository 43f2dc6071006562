"""Scanned block stacks and rematerialized segments: the NNX side of `compiler/stacks.py`.

A `LayerStack` holds the layers of one copy of a repeated block with every variable
stacked on a leading `layers` axis (built from the N copies exactly as the unscanned
model would initialize them, so both start from the same weights), and runs the copies
as one `jax.lax.scan`: the traced program has one copy's operations whatever N is. The
dropout stream (`nnx.Rngs` state) travels in the scan's carry, so copy i draws exactly
the keys it draws unscanned; batch statistics come back as the scan's stacked outputs.
`remat` wraps the scanned body (or an unscanned copy, `run_segment`) in `jax.checkpoint`
with the named policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from modelspec.compiler.autocast import autocast
from modelspec.compiler.sharding.constraints import constrain
from modelspec.compiler.stacks import Segment, Stack

Step = tuple  # (name, kind, args, refs, policy, decode kind)


def remat_policy(name: str) -> Callable | None:
    """The `jax.checkpoint` policy of a `remat` option (None: save nothing)."""
    policies = jax.checkpoint_policies
    return {
        "full": None,
        "dots_saveable": policies.dots_saveable,
        "dots_with_no_batch_dims_saveable": policies.dots_with_no_batch_dims_saveable,
    }[name]


def rematerialized(fn: Callable, name: str, *, in_scan: bool = False) -> Callable:
    """`fn` under `jax.checkpoint` with the policy `name` (`fn` itself for "none")."""
    if name == "none":
        return fn
    return jax.checkpoint(fn, policy=remat_policy(name), prevent_cse=not in_scan)


def invoke(layer, kind: str, args: tuple, values: dict, *, training: bool, rngs, **extra) -> Any:
    """Call a layer on its inputs from `values` in its call kind's form."""
    if kind == "single":
        return layer(values[args[0]], training=training, rngs=rngs, **extra)
    if kind == "multi":
        return layer([values[r] for r in args], training=training, rngs=rngs, **extra)
    named = {a: values[r] for a, r in args}
    return layer(**named, training=training, rngs=rngs, **extra)


def run_steps(
    layers: Any,
    steps: tuple[Step, ...],
    values: dict,
    *,
    training: bool,
    rngs,
    caches: dict | None = None,
    position: Any = None,
) -> dict:
    """Run plain (unmasked) steps in order, filling `values`; in decode mode (`caches`
    given) cached layers read and replace their entry of `caches`."""
    for name, kind, args, refs, policy, decode in steps:
        layer = autocast(layers[name], policy)
        if caches is not None and decode == "cached":
            named = {a: values[r] for a, r in args} if kind == "named" else {}
            x = values[args[0]] if kind == "single" else None
            out, caches[name] = (
                layer.decode(**named, cache=caches[name], position=position)
                if kind == "named"
                else layer.decode(x, x, cache=caches[name], position=position)
            )
        elif caches is not None and decode == "offset":
            out = layer.decode(values[args[0]], position=position)
        else:
            out = invoke(layer, kind, args, values, training=training, rngs=rngs)
        for ref, value in zip(refs, out if len(refs) > 1 else (out,), strict=True):
            if getattr(value, "ndim", 0) >= 1:
                value = constrain(value, ("batch",) + (None,) * (value.ndim - 1))
            values[ref] = value
    return values


@dataclass(frozen=True)
class StackPlan:
    """A scanned stack as the model runs it: the stack and its first copy's steps
    (static, hashable graph data). The stacked variables live in the model's `layers`
    under the stack's name, keyed by names relative to a copy (`h/attention/...`)."""

    stack: Stack
    steps: tuple

    @property
    def by_step(self) -> tuple[tuple[str, str], ...]:
        """(first copy's layer name, relative name) pairs."""
        return tuple(zip(self.stack.copies[0], self.stack.rel, strict=True))


def stacked_layers(stack: Stack, copies: list[list[nnx.Module]]) -> nnx.Dict:
    """One copy's layers (by relative name) whose variables hold all copies' values on
    a leading axis with the logical name `layers`."""
    splits = [nnx.split(nnx.Dict(dict(zip(stack.rel, copy, strict=True)))) for copy in copies]
    graphdef = splits[0][0]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *(state for _, state in splits))
    layers = nnx.merge(graphdef, stacked)
    for _, var in nnx.to_flat_state(nnx.state(layers)):
        axes = var.get_metadata().get("logical_axes")
        if axes is not None:
            var.set_metadata(logical_axes=("layers", *axes))
    return layers


def run_stack(
    plan: StackPlan,
    layers: nnx.Dict,
    carry: jax.Array,
    sides: dict[str, jax.Array],
    *,
    training: bool,
    rngs: nnx.Rngs,
    caches: Any = None,
    position: Any = None,
) -> Any:
    """The last copy's output after scanning all copies (and the stacked caches in
    decode mode)."""
    stack = plan.stack
    graphdef, stats, rest = nnx.split(layers, nnx.BatchStat, ...)
    rng_def, rng_state = nnx.split(rngs)
    carry_in, carry_out = stack.carry_in, stack.prefix(0) + stack.carry_out

    def body(c, xs):
        x, rs = c
        st, params, cache = xs
        mods = nnx.merge(graphdef, st, params)
        by_name = {name: mods[rel] for name, rel in plan.by_step}
        r = nnx.merge(rng_def, rs)
        values = {**sides, carry_in: x}
        cache = dict(cache) if cache is not None else None
        run_steps(
            by_name, plan.steps, values, training=training, rngs=r, caches=cache, position=position
        )
        _, new_st, _ = nnx.split(mods, nnx.BatchStat, ...)
        _, new_rs = nnx.split(r)
        return (values[carry_out], new_rs), (new_st, cache)

    body = rematerialized(body, stack.remat, in_scan=True)
    (out, rng_state), (stats, caches) = jax.lax.scan(
        body, (carry, rng_state), (stats, rest, caches), length=stack.count
    )
    nnx.update(layers, stats)
    nnx.update(rngs, rng_state)
    return out if caches is None else (out, caches)


def init_stack_cache(
    plan: StackPlan, layers: nnx.Dict, batch: int, length: int, dtype: Any
) -> dict[str, Any]:
    """Stacked KV caches of a copy's cached layers: {first copy's layer name: cache with
    a leading copies axis}."""
    graphdef, state = nnx.split(layers)
    one = nnx.merge(graphdef, jax.tree.map(lambda a: a[0], state))
    rel = dict(plan.by_step)
    caches = {
        name: one[rel[name]].init_cache(batch, length, dtype)
        for name, *_, decode in plan.steps
        if decode == "cached"
    }
    count = plan.stack.count
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (count, *a.shape)), caches)


def run_segment(
    seg: Segment,
    layers: dict[str, nnx.Module],
    steps: tuple,
    values: dict,
    *,
    training: bool,
    rngs: nnx.Rngs,
) -> None:
    """Run one copy of an unscanned repeated block under `jax.checkpoint`: its layers
    and the dropout stream go in as pure state and come back updated, so recomputing
    the copy in the backward pass redraws the same dropout masks."""
    sub = {name: layers[name] for name in seg.nodes}
    graphdef, state = nnx.split((sub, rngs))

    def fn(state, inputs):
        mods, r = nnx.merge(graphdef, state)
        vals = run_steps(mods, steps, dict(inputs), training=training, rngs=r)
        _, new_state = nnx.split((mods, r))
        return {ref: vals[ref] for ref in seg.outputs}, new_state

    outputs, new_state = rematerialized(fn, seg.remat)(
        state, {ref: values[ref] for ref in seg.inputs}
    )
    nnx.update((sub, rngs), new_state)
    values.update(outputs)


def unstacked(tree: dict, execution: Any) -> dict:
    """A model state dict (`{"layers": {...}}` of arrays) with every scanned stack's
    entry split back into its copies' layers (`h` -> `h/0/attention`, `h/1/...`), the
    names the unscanned model uses: for code that reads weights layer by layer
    (exporters, Keras twins). Other entries are shared, not copied."""
    if not execution or not execution.stacks or "layers" not in tree:
        return tree
    layers = dict(tree["layers"])
    for stack in execution.stacks:
        held = layers.pop(stack.name, None)
        if held is None:
            continue
        for i, copy in enumerate(stack.copies):
            for name, rel in zip(copy, stack.rel, strict=True):
                if rel in held:
                    layers[name] = jax.tree.map(lambda a, i=i: a[i], held[rel])
    return {**tree, "layers": layers}


def restacked(tree: dict, execution: Any) -> dict:
    """The inverse of `unstacked`: per-copy layer entries stacked under the stack's name."""
    if not execution or not execution.stacks or "layers" not in tree:
        return tree
    layers = dict(tree["layers"])
    for stack in execution.stacks:
        held = {}
        for j, rel in enumerate(stack.rel):
            parts = [layers.pop(copy[j]) for copy in stack.copies if copy[j] in layers]
            if parts:
                held[rel] = jax.tree.map(lambda *xs: jnp.stack(xs), *parts)
        if held:
            layers[stack.name] = held
    return {**tree, "layers": layers}
