"""Compile a checked spec into a Flax NNX model, and split it into pure pytrees.

The model walks the resolved graph in topological order. Its state splits into
`params` (trainable), `batch_stats` (mutable, non-trainable), `rng` (the dropout
stream, seeded from the spec) and `frozen` (weights of `trainable: false` layers), so
the train step can be one `jax.jit` over plain pytrees with `nnx.merge` inside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
from flax import nnx

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.infer import input_types, node_inputs
from modelspec.compiler.layers import nnx_class
from modelspec.compiler.layers.base import Frozen
from modelspec.compiler.load import load
from modelspec.compiler.sharding.constraints import constrain


class CompiledModel(nnx.Module):
    """An NNX model compiled from a spec. Call with a dict of named inputs; returns a
    dict of named outputs. `training` switches dropout and batch statistics."""

    def __init__(self, spec: CheckedSpec, *, seed: int | None = None):
        an = spec
        seed = spec.seed if seed is None else seed
        root = jax.random.key(seed)
        param_key, dropout_key = jax.random.split(root)
        types = input_types(spec)
        layers: dict[str, nnx.Module] = {}
        plan = []
        for i, node in enumerate(an.graph.nodes):
            shape = an.shapes[node.name]
            build = nnx_class(type(node.layer))  # the spec class's `nnx` reference
            key = jax.random.fold_in(param_key, i)
            layers[node.name] = build(node.layer, node_inputs(node, types), shape, key)
            types[node.name] = shape.output
            plan.append((node.name, node.kind, node.args))
        self.layers = nnx.Dict(layers)
        self.plan = tuple(plan)
        self.input_names = an.graph.inputs
        self.output_names = an.graph.outputs
        self.rngs = nnx.Rngs(dropout=dropout_key)

    def __call__(
        self, inputs: dict[str, jax.Array], *, training: bool = False
    ) -> dict[str, jax.Array]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise KeyError(f"missing model inputs {missing}; expected {list(self.input_names)}")
        values = dict(inputs)
        for name, kind, args in self.plan:
            layer = self.layers[name]
            if kind == "single":
                out = layer(values[args[0]], training=training, rngs=self.rngs)
            elif kind == "multi":
                out = layer([values[r] for r in args], training=training, rngs=self.rngs)
            else:
                out = layer(**{a: values[r] for a, r in args}, training=training, rngs=self.rngs)
            if getattr(out, "ndim", 0) >= 1:  # keep the batch axis on the data axes
                out = constrain(out, ("batch",) + (None,) * (out.ndim - 1))
            values[name] = out
        return {n: values[n] for n in self.output_names}


FILTERS = (nnx.Param, nnx.BatchStat, nnx.RngState, Frozen)


@dataclass
class ModelState:
    """The model as pure pytrees: nested dicts of arrays, no flax Variable objects, so
    a jitted step flattens and rebuilds them in C++ without Python callbacks."""

    graphdef: Any
    params: Any
    batch_stats: Any
    rng: Any
    frozen: Any

    def merge(self) -> CompiledModel:
        """The NNX module back from the pure state."""
        return nnx.merge(self.graphdef, self.params, self.batch_stats, self.rng, self.frozen)

    def replace(self, **changes: Any) -> ModelState:
        """A copy with some pytrees swapped (e.g. the params being differentiated)."""
        return dataclasses.replace(self, **changes)

    def apply(
        self, inputs: dict[str, jax.Array], *, training: bool
    ) -> tuple[dict[str, jax.Array], ModelState]:
        """The forward pass: (outputs, the state after it — new batch statistics and
        dropout counter). Pure, so safe inside `jax.jit` and `jax.grad`."""
        outputs, stats, rng = apply(
            self.graphdef,
            self.params,
            self.batch_stats,
            self.rng,
            self.frozen,
            inputs,
            training=training,
        )
        return outputs, self.replace(batch_stats=stats, rng=rng)


def split(model: CompiledModel) -> ModelState:
    """`nnx.split` with one filter per state kind (params, batch stats, rng, frozen),
    each turned into a pure dict of arrays."""
    graphdef, *states = nnx.split(model, *FILTERS)
    return ModelState(graphdef, *(nnx.to_pure_dict(s) for s in states))


def variables(model: CompiledModel) -> dict[str, nnx.Variable]:
    """Every variable with its metadata (e.g. `logical_axes`), by '/'-joined path."""
    _, *states = nnx.split(model, *FILTERS)
    return {
        "/".join(str(p) for p in path): var
        for state in states
        for path, var in nnx.to_flat_state(state)
    }


def flat(tree: dict, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    """(path, leaf) pairs of a pure state dict."""
    if isinstance(tree, dict):
        return [item for k, v in tree.items() for item in flat(v, (*prefix, k))]
    return [(prefix, tree)]


def apply(graphdef, params, batch_stats, rng, frozen, inputs, *, training: bool):
    """Pure forward pass on pure dicts: returns (outputs, new_batch_stats, new_rng).
    Safe inside jit and grad: merging pure dicts creates fresh Variables in the current
    trace, so updating the dropout counter or batch statistics under `jax.grad` is allowed."""
    model = nnx.merge(graphdef, params, batch_stats, rng, frozen)
    outputs = model(inputs, training=training)
    _, _, new_stats, new_rng, _ = nnx.split(model, *FILTERS)
    return outputs, nnx.to_pure_dict(new_stats), nnx.to_pure_dict(new_rng)


def build(spec: CheckedSpec | str | dict, *, seed: int | None = None) -> CompiledModel:
    """Compile a spec (or a path/dict, loaded first) into an NNX model."""
    return CompiledModel(load(spec), seed=seed)
