"""Keras's `adapt()` in a run: before step 1 of a fresh run, the layers with "adapted"
variables learn them from the training split (after the validation split is taken).

Only a fresh run adapts (`Trainer.run`, when no checkpoint was restored): the state then
travels with the frozen weights in every checkpoint, so a resumed run, `evaluate` and
`predict` use exactly the state the first run learned, and never see other data.

Deterministic: the training split is read in its stored order, unshuffled. A layer
whose input is a model input adapts on that array directly (as `layer.adapt(x_train)`
in Keras); otherwise its input is computed by the model in inference mode, batch by
batch, with the padding rows of the last batch dropped. Shape inference guaranteed
that no weights lie on that path (`compiler/adapt_inputs.py`); adapted layers upstream
are adapted first, in rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from modelspec.compiler.adapt_inputs import is_adapted
from modelspec.compiler.graph import split_ref
from modelspec.compiler.sharding.mesh import put_batch
from modelspec.errors import AdaptError, SpecError
from modelspec.runtime.steps import model_state
from modelspec.schema.vocabulary import load_reference


def adapted_nodes(spec: Any) -> list[Any]:
    """The graph nodes with state to adapt, in graph order."""
    return [n for n in spec.graph.nodes if is_adapted(spec.shapes[n.name])]


def _upstream(spec: Any, node: Any) -> set[str]:
    """Names of the layers `node` depends on (transitively)."""
    producers = {n.name: n for n in spec.graph.nodes}
    seen: set[str] = set()
    todo = [split_ref(r)[0] for r in node.refs]
    while todo:
        name = todo.pop()
        if name in producers and name not in seen:
            seen.add(name)
            todo += [split_ref(r)[0] for r in producers[name].refs]
    return seen


def adapt_state(
    session: Any, state: Any, train: Any, batch_size: int, report: Callable[[str], None]
) -> Any:
    """The TrainState with every adapted layer's variables learned from `train` (the
    training split); `state` itself when the model has none. A layer whose data cannot
    give Keras's state raises a SpecError positioned on the argument to change."""
    spec = session.spec
    pending = adapted_nodes(spec)
    if not pending:
        return state
    frozen = jax.tree_util.tree_map(np.asarray, jax.device_get(state.frozen))
    while pending:
        names = {n.name for n in pending}
        ready = [n for n in pending if not (_upstream(spec, n) & names)]
        data = _layer_inputs(session, state, train, batch_size, [n.refs[0] for n in ready])
        for node in ready:
            values = _adapt(spec, node, data[node.refs[0]])
            layer_vars = frozen["layers"][node.name]
            for path, value in values.items():
                *outer, leaf = path.split("/")
                target = layer_vars
                for part in outer:
                    target = target[part]
                target[leaf] = value.astype(target[leaf].dtype)
            report(f"Adapted {node.layer.type} '{node.name}' on {len(train)} training samples")
        state = state._replace(frozen=_put_like(frozen, state.frozen))
        pending = [n for n in pending if n not in ready]
    return state


def _adapt(spec: Any, node: Any, data: np.ndarray) -> dict[str, np.ndarray]:
    """Run the spec class's adapter, positioning its refusal on the layer's argument."""
    try:
        return load_reference(type(node.layer).adapter)(node.layer, data)
    except AdaptError as exc:
        path = ("model", "layers", node.index) + ((exc.field,) if exc.field else ())
        message = f"{node.layer.type} '{node.name}': {exc.message}"
        raise SpecError.single(spec.error(path, message, hint=exc.hint)) from None


def _put_like(values: Any, like: Any) -> Any:
    """Host arrays placed as the arrays they replace (same sharding)."""
    return jax.tree_util.tree_map(lambda v, old: jax.device_put(v, old.sharding), values, like)


def _layer_inputs(
    session: Any, state: Any, train: Any, batch_size: int, refs: list[str]
) -> dict[str, np.ndarray]:
    """The value of each ref over the whole training split, in stored order: a model
    input's array, or the model's inner tensor computed in inference mode."""
    out = {r: np.asarray(train.inputs[r]) for r in refs if r in train.inputs}
    taps = tuple(sorted({r for r in refs if r not in out}))
    if not taps:
        return out
    graphdef = session.graphdef

    @jax.jit
    def tapped(state, inputs):
        values, _ = model_state(graphdef, state).apply(inputs, training=False, taps=taps)
        return {r: values[r] for r in taps}

    parts: dict[str, list[np.ndarray]] = {r: [] for r in taps}
    for index in range(train.num_batches(batch_size, False)):
        batch = train.batch(0, index, batch_size, shuffle=False, seed=0, drop_remainder=False)
        values = tapped(state, put_batch(session.dist, batch["inputs"]))
        keep = batch["mask"] > 0
        for r in taps:
            parts[r].append(_host(values[r])[keep])
    out.update({r: np.concatenate(parts[r]) for r in taps})
    return out


def _host(x: jax.Array) -> np.ndarray:
    """A global array on the host (gathered across processes when there are several)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


__all__ = ["adapt_state", "adapted_nodes"]
