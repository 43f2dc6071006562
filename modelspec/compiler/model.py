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

from modelspec.compiler.autocast import autocast
from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.graph import output_refs
from modelspec.compiler.host_layers import device_input_types, is_host
from modelspec.compiler.infer import input_types, node_inputs, per_output, takes_recorded_masks
from modelspec.compiler.layer_stack import (
    StackPlan,
    init_stack_cache,
    invoke,
    run_segment,
    run_stack,
    run_steps,
    stacked_layers,
)
from modelspec.compiler.layers import nnx_class
from modelspec.compiler.layers.base import Frozen
from modelspec.compiler.load import load
from modelspec.compiler.sharding.constraints import constrain
from modelspec.compiler.stacks import Execution
from modelspec.schema.precision import policy_rule


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
        mask_plan: dict[str, tuple[str, tuple[str, ...], bool, bool, bool]] = {}
        # Keras dtype policies: the autocast rule per layer (None under float32), kept
        # in each layer's step.
        policies = {n.name: policy_rule(n.layer, spec.model) for n in an.graph.nodes}
        steps: dict[str, tuple] = {}
        for i, node in enumerate(an.graph.nodes):
            shape = an.shapes[node.name]
            if is_host(node.layer):  # run in the data pipeline: its output is an input
                types[node.name] = shape.output
                continue
            build = nnx_class(type(node.layer))  # the spec class's `nnx` reference
            key = jax.random.fold_in(param_key, i)
            layers[node.name] = build(node.layer, node_inputs(node, types), shape, key)
            refs = output_refs(node.name, len(shape.outputs))
            types.update(zip(refs, shape.outputs, strict=True))
            decode = getattr(type(node.layer), "decode", None)
            steps[node.name] = (node.name, node.kind, node.args, refs, policies[node.name], decode)
            plan.append(("layer", node.name))
            cls = type(node.layer)
            if cls.mask_arg or cls.clears_input_masks or shape.graph_mask is not None:
                source = "" if not cls.mask_arg else "runtime"
                source = "graph" if takes_recorded_masks(cls, node.kind) else source
                mask_plan[node.name] = (source, cls.mask_args, shape.mask is not None)
                mask_plan[node.name] += (cls.clears_input_masks, shape.graph_mask is not None)
        execution = spec.execution or Execution()
        stack_plans = {}
        for stack in execution.stacks:  # the copies' layers, stacked into one scan
            copies = [[layers.pop(n) for n in copy] for copy in stack.copies]
            layers[stack.name] = stacked_layers(stack, copies)
            stack_plans[stack.name] = StackPlan(stack, tuple(steps[n] for n in stack.copies[0]))
        plan = _grouped(plan, execution)
        self.stack_plans = tuple(stack_plans.items())
        self.segments = execution.segments
        self.steps = tuple(steps.items())
        self.layers = nnx.Dict(layers)
        # Keras masks (see `_masks_after`): layer -> (which masks it takes: "" none,
        # "graph" recorded or "runtime"; the named arguments that get one; output masked;
        # clears; output masked in Keras's graph).
        self.mask_plan = tuple(mask_plan.items())  # a tuple: static, hashable graph data
        self.plan = tuple(plan)
        self.input_names = tuple(device_input_types(spec))  # host layers' outputs included
        self.output_names = an.graph.outputs
        self.rngs = nnx.Rngs(dropout=dropout_key)

    def __call__(
        self,
        inputs: dict[str, jax.Array],
        *,
        training: bool = False,
        return_masks: bool = False,
        taps: tuple[str, ...] = (),
        decode: tuple[dict[str, Any], jax.Array] | None = None,
    ) -> dict[str, jax.Array] | tuple[dict[str, jax.Array], dict[str, Any]]:
        """The outputs by name; with `return_masks`, also the Keras masks of the masked
        outputs (by name), which the loss and metrics apply as Keras does. `taps` names
        inner tensors (graph refs) to return too, among the outputs by their refs: the
        activity regularizers read them (`compiler/penalties.py`). `decode=(caches,
        position)` runs one generation step in inference mode: the inputs are the tokens
        at positions [position, position + T), cached attention layers read and extend
        their KV caches, and the result is (outputs, new caches)."""
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise KeyError(f"missing model inputs {missing}; expected {list(self.input_names)}")
        values = dict(inputs)
        masks: dict[str, jax.Array] = {}  # ref -> Keras mask, for masked tensors only
        graph: dict[str, jax.Array] = {}  # ref -> the mask Keras's graph recorded
        mask_plan = dict(self.mask_plan)
        steps = dict(self.steps)
        stack_plans = dict(self.stack_plans)
        caches = None if decode is None else dict(decode[0])
        position = None if decode is None else decode[1]
        for what, name in self.plan:
            if what == "stack":
                stack = stack_plans[name].stack
                out = run_stack(
                    stack_plans[name],
                    self.layers[name],
                    values[stack.carry_in],
                    {r: values[r] for r in stack.sides},
                    training=training,
                    rngs=self.rngs,
                    caches=None if caches is None else caches[name],
                    position=position,
                )
                if caches is not None:
                    out, caches[name] = out
                values[stack.output] = out
                continue
            if what == "segment":
                seg = self.segments[name]
                seg_steps = tuple(steps[n] for n in seg.nodes)
                if caches is None:
                    run_segment(
                        seg, self.layers, seg_steps, values, training=training, rngs=self.rngs
                    )
                else:
                    self._decode(seg_steps, values, caches, position)
                continue
            step = mask_plan.get(name)
            _, kind, args, refs, policy, decode_kind = steps[name]
            if caches is not None and decode_kind in ("cached", "offset"):
                self._decode((steps[name],), values, caches, position)
                continue
            layer = autocast(self.layers[name], policy)
            extra = {}
            if step and step[0]:  # `mask=` comes from Keras's graph, `query_mask=`... not
                extra = _mask_kwargs(kind, args, graph if step[0] == "graph" else masks, step[1])
            out = invoke(layer, kind, args, values, training=training, rngs=self.rngs, **extra)
            if step:
                _masks_after(self.layers[name], step, kind, args, refs, values, masks, graph)
            # A multi-output layer returns a tuple, one tensor per ref (`lstm.0`, ...).
            for ref, value in zip(refs, out if len(refs) > 1 else (out,), strict=True):
                if getattr(value, "ndim", 0) >= 1:  # keep the batch axis on the data axes
                    value = constrain(value, ("batch",) + (None,) * (value.ndim - 1))
                values[ref] = value
        outputs = {n: values[n] for n in (*self.output_names, *taps)}
        if caches is not None:
            return outputs, caches
        if return_masks:
            return outputs, {n: masks[n] for n in self.output_names if n in masks}
        return outputs

    def _decode(self, steps: tuple, values: dict, caches: dict, position: Any) -> None:
        """Run `steps` in decode mode (inference; cached layers extend `caches`)."""
        run_steps(
            self.layers,
            steps,
            values,
            training=False,
            rngs=self.rngs,
            caches=caches,
            position=position,
        )

    def init_cache(self, batch: int, length: int, dtype: Any = None) -> dict[str, Any]:
        """Empty KV caches for generation of up to `length` positions: {layer: cache}
        for every cached attention layer (one stacked entry per scanned stack)."""
        caches: dict[str, Any] = {}
        stacked = {n for _, plan in self.stack_plans for n in plan.stack.nodes}
        for name, (*_, decode) in self.steps:
            if decode == "cached" and name not in stacked:
                caches[name] = self.layers[name].init_cache(batch, length, dtype)
        for name, plan in self.stack_plans:
            caches[name] = init_stack_cache(plan, self.layers[name], batch, length, dtype)
        return caches


def _grouped(plan: list[tuple[str, str]], execution: Execution) -> tuple:
    """The plan with each scanned stack and rematerialized segment as one entry, where
    its first layer was (a stack by name, a segment by its index)."""
    owner = {n: ("stack", s.name) for s in execution.stacks for n in s.nodes}
    owner |= {n: ("segment", i) for i, s in enumerate(execution.segments) for n in s.nodes}
    out, seen = [], set()
    for entry in plan:
        unit = owner.get(entry[1])
        if unit is None:
            out.append(entry)
        elif unit not in seen:
            seen.add(unit)
            out.append(unit)
    return tuple(out)


def _in_form(kind: str, args: tuple, table: dict[str, Any]) -> Any:
    """A node's entries of `table` in its call kind's form (None where missing)."""
    if kind == "single":
        return table.get(args[0])
    if kind == "multi":
        return [table.get(r) for r in args]
    return {a: table.get(r) for a, r in args}


def _mask_kwargs(
    kind: str, args: tuple, masks: dict[str, jax.Array], mask_args: tuple[str, ...]
) -> dict[str, Any]:
    """The masks as the Keras layer's `call` takes them: `mask=` (one, or a list for a
    merge), or `<argument>_mask=` for the named arguments in `mask_args` (`query_mask=`;
    none for an `attention_mask` tensor)."""
    if kind == "named":
        return {f"{a}_mask": masks.get(r) for a, r in args if a in mask_args}
    return {"mask": _in_form(kind, args, masks)}


def _masks_after(layer, step, kind, args, refs, values, masks, graph) -> None:
    """Update the masks after a layer ran, as Keras's functional model does (see
    `compiler/infer.py:layer_masks`): the output's graph mask and run-time mask from
    `compute_mask` (only where shape inference found them), then — for layers that
    clear them, like MultiHeadAttention — the input tensors' run-time masks removed."""
    source, _, out_masked, clears, graph_masked = step
    inputs = _in_form(kind, args, values)
    recorded = layer.compute_mask(inputs, _in_form(kind, args, graph)) if graph_masked else None
    if source == "graph":
        new = recorded
    else:
        new = layer.compute_mask(inputs, _in_form(kind, args, masks)) if out_masked else None
    if clears:
        for r in args if kind != "named" else [r for _, r in args]:
            masks.pop(r, None)
    for table, value in ((masks, new), (graph, recorded)):
        for ref, mask in zip(refs, per_output(value, len(refs)), strict=True):
            if mask is not None:  # one per output where `compute_mask` gives a tuple
                table[ref] = mask


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
        self,
        inputs: dict[str, jax.Array],
        *,
        training: bool,
        return_masks: bool = False,
        taps: tuple[str, ...] = (),
    ) -> tuple[Any, ModelState]:
        """The forward pass: (outputs, the state after it — new batch statistics and
        dropout counter). Pure, so safe inside `jax.jit` and `jax.grad`. With
        `return_masks` the first item is (outputs, Keras masks of the masked outputs)."""
        outputs, stats, rng = apply(
            self.graphdef,
            self.params,
            self.batch_stats,
            self.rng,
            self.frozen,
            inputs,
            training=training,
            return_masks=return_masks,
            taps=taps,
        )
        return outputs, self.replace(batch_stats=stats, rng=rng)

    def decode(
        self, inputs: dict[str, jax.Array], caches: dict[str, Any], position: jax.Array
    ) -> tuple[dict[str, jax.Array], dict[str, Any]]:
        """One generation step (inference mode): the outputs for the tokens at
        positions [position, position + T) and the extended KV caches. Pure, so safe
        inside `jax.jit` (donate `caches`)."""
        return self.merge()(inputs, decode=(caches, position))

    def init_cache(self, batch: int, length: int, dtype: Any = None) -> dict[str, Any]:
        """Empty KV caches for `length` positions (`CompiledModel.init_cache`)."""
        return self.merge().init_cache(batch, length, dtype)


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


def apply(
    graphdef,
    params,
    batch_stats,
    rng,
    frozen,
    inputs,
    *,
    training: bool,
    return_masks=False,
    taps=(),
):
    """Pure forward pass on pure dicts: returns (outputs, new_batch_stats, new_rng).
    Safe inside jit and grad: merging pure dicts creates fresh Variables in the current
    trace, so updating the dropout counter or batch statistics under `jax.grad` is allowed."""
    model = nnx.merge(graphdef, params, batch_stats, rng, frozen)
    outputs = model(inputs, training=training, return_masks=return_masks, taps=taps)
    _, _, new_stats, new_rng, _ = nnx.split(model, *FILTERS)
    return outputs, nnx.to_pure_dict(new_stats), nnx.to_pure_dict(new_rng)


def build(spec: CheckedSpec | str | dict, *, seed: int | None = None) -> CompiledModel:
    """Compile a spec (or a path/dict, loaded first) into an NNX model."""
    return CompiledModel(load(spec), seed=seed)
