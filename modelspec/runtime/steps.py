"""The train state and the jitted steps.

The train step is one `jax.jit` over a pure pytree (`TrainState`), with the model merged
from (graphdef, state) inside and the state buffers donated. `steps_per_execution > 1`
runs chunks of steps over stacked batches, fused into one dispatch or not as
`modelspec.runtime.chunks` decides.
Metric states ride along in the TrainState, so nothing is read back per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

from modelspec.compiler.model import ModelState
from modelspec.runtime.chunks import StepChunks, scan_chunk
from modelspec.runtime.objective.objective import Objective
from modelspec.runtime.optim.loss_scale import find_loss_scale, scaled_value_and_grad


class TrainState(NamedTuple):
    """Everything that changes during training (checkpointed as one pytree)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    rng: Any
    frozen: Any
    opt_state: Any
    metrics: Any


def init_state(
    model: ModelState, tx: optax.GradientTransformation, objective: Objective | None
) -> TrainState:
    """The initial TrainState (`open_session` runs this inside a jit with shardings)."""
    metrics = objective.init_metrics() if objective is not None else {}
    return TrainState(
        jnp.zeros((), jnp.int32),
        model.params,
        model.batch_stats,
        model.rng,
        model.frozen,
        tx.init(model.params),
        metrics,
    )


def model_state(graphdef, state: TrainState) -> ModelState:
    """The model's part of a TrainState, as a ModelState."""
    return ModelState(graphdef, state.params, state.batch_stats, state.rng, state.frozen)


def make_train_step(
    graphdef, tx: optax.GradientTransformation, objective: Objective, dist=None
) -> Callable:
    """(state, batch) -> state: forward, loss, grads, optimizer update, metrics."""

    def step(state: TrainState, batch) -> TrainState:
        with _active(dist):
            return _train(state, batch)

    def _train(state: TrainState, batch) -> TrainState:
        model = model_state(graphdef, state)

        penalties = objective.penalties

        def loss_fn(params):
            (outputs, masks), after = model.replace(params=params).apply(
                batch["inputs"], training=True, taps=penalties.taps, return_masks=True
            )
            loss = objective.total_loss(outputs, batch["targets"], batch["mask"], masks)
            # Keras's compute_loss: the compiled loss plus `model.losses` (penalties)
            reg = penalties.loss(params, outputs, batch["mask"])
            return loss + reg, (outputs, masks, reg, after.batch_stats, after.rng)

        (loss, (outputs, masks, reg, stats, rng)), grads = scaled_value_and_grad(
            loss_fn, find_loss_scale(state.opt_state)
        )(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        # Keras applies weight constraints right after the update
        params = penalties.constrain(optax.apply_updates(state.params, updates))
        metrics = objective.update_metrics(
            state.metrics, loss, outputs, batch["targets"], batch["mask"], reg, masks
        )
        return TrainState(state.step + 1, params, stats, rng, state.frozen, opt_state, metrics)

    return step


def _active(dist):
    """Activation sharding constraints are traced only inside a distributed step."""
    return dist.active() if dist is not None else contextlib.nullcontext()


def jit_train(step: Callable, steps_per_execution: int, dist=None, shardings=None) -> Callable:
    """Jit one step, or (steps_per_execution > 1) a `TrainChunks` that runs chunks of
    batches stacked on a leading axis as `modelspec.runtime.chunks` decides; explicit
    state/batch shardings, the state donated."""
    kw = {}
    if dist is not None:
        kw = {
            "in_shardings": (shardings, dist.sharding(dist.batch_spec)),
            "out_shardings": shardings,
        }
    if steps_per_execution == 1:
        return jax.jit(step, donate_argnums=0, **kw)
    if dist is not None:
        stacked = dist.sharding(PartitionSpec(None, *dist.batch_spec))
        rep = dist.sharding(PartitionSpec())
        kw = {"in_shardings": (shardings, stacked), "out_shardings": shardings}
        one_kw = {"in_shardings": (shardings, stacked, rep), "out_shardings": shardings}
    else:
        one_kw = {}

    def one(state, batches, i):  # step i of a stacked chunk
        batch = jax.tree_util.tree_map(
            lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), batches
        )
        return step(state, batch)

    def fused(count: int, mode: str) -> Callable:
        def many(state, batches):
            return scan_chunk(step, state, batches, count, mode)

        return jax.jit(many, donate_argnums=0, **kw)

    return TrainChunks(StepChunks(jax.jit(one, donate_argnums=0, **one_kw), fused))


class TrainChunks:
    """(state, stacked batches) -> state for the host path at steps_per_execution > 1.

    The chunk's global step decides its program (`StepChunks`); it is known without a
    device sync when `state` is the one this object returned last (the trainer's loop),
    and read from `state.step` once otherwise (a fresh or restored state)."""

    def __init__(self, chunks: StepChunks):
        self.chunks = chunks
        self._last: tuple[Any, int] | None = None  # (step array returned, its value)

    def __call__(self, state: TrainState, batches) -> TrainState:
        count = jax.tree_util.tree_leaves(batches)[0].shape[0]
        if self._last is not None and state.step is self._last[0]:
            first = self._last[1]
        else:
            first = int(state.step)
        out = self.chunks.run(state, count, first, lambda i: (batches, np.int32(i)), (batches,))
        self._last = (out.step, first + count)
        return out


def make_eval_step(graphdef, objective: Objective, dist=None, shardings=None) -> Callable:
    """(state, metric_state, batch) -> metric_state, in inference mode."""

    def step(state: TrainState, metrics, batch):
        penalties = objective.penalties
        with _active(dist):
            (outputs, masks), _ = model_state(graphdef, state).apply(
                batch["inputs"], training=False, taps=penalties.taps, return_masks=True
            )
        loss = objective.total_loss(outputs, batch["targets"], batch["mask"], masks)
        reg = penalties.loss(state.params, outputs, batch["mask"])  # in val_loss, as Keras
        return objective.update_metrics(
            metrics, loss + reg, outputs, batch["targets"], batch["mask"], reg, masks
        )

    kw = {}
    if dist is not None:
        kw = {
            "in_shardings": (shardings, shardings.metrics, dist.sharding(dist.batch_spec)),
            "out_shardings": shardings.metrics,
        }
    return jax.jit(step, donate_argnums=1, **kw)


def make_predict_step(graphdef, dist=None, shardings=None) -> Callable:
    """(state, inputs) -> outputs, in inference mode."""

    def step(state: TrainState, inputs):
        with _active(dist):
            outputs, _ = model_state(graphdef, state).apply(inputs, training=False)
        return outputs

    kw = {}
    if dist is not None:
        kw = {"in_shardings": (shardings, dist.sharding(dist.batch_spec))}
    return jax.jit(step, **kw)


def stack(batches: list) -> Any:
    """Stack host batches on a new leading axis for a scanned multi-step."""
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *batches)
