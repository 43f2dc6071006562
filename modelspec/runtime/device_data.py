"""Device-resident training data: small in-memory datasets live on the devices for the
whole run, and each step gathers its batch there.

Why: for small models the step itself takes microseconds, so slicing a batch on the
host, padding it and copying it to the device every step costs more than the compute
(Keras overlaps that copy with the step; we avoid it). Here the whole training set is
copied once, replicated on every device of the mesh (each device gathers its own rows
of the batch, so no collective is needed), and once per epoch the epoch's row indices
and padding masks, a `(steps, batch)` table computed by exactly the code that makes the
host batches (`ArrayDataset.epoch_rows`), are copied sharded along the batch axis. The
jitted step reads row `state.step - base` of that table, so a step call moves no data
from the host at all: batches, their order, the padded last batch and its mask are
identical to the host path, and resume at any (epoch, batch) position is exact.

When it is used (`resident_data`): one process (a multi-process run keeps the host
path, each process sending only its rows) and the training arrays fit the budget on
every device: a quarter of the device's memory where the backend reports it, else
`CPU_BUDGET_BYTES` (1 GiB). Anything else trains from host batches as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from modelspec.runtime.chunks import StepChunks, scan_chunk
from modelspec.runtime.data.dataset import ArrayDataset
from modelspec.runtime.steps import make_train_step

__all__ = ["CPU_BUDGET_BYTES", "DeviceData", "resident_budget", "resident_data"]

CPU_BUDGET_BYTES = 1 << 30
"""Devices that report no memory size (CPU) hold at most this much training data."""

DEVICE_FRACTION = 0.25
"""Devices that report their memory hold training data up to this fraction of it."""


def dataset_bytes(dataset: ArrayDataset) -> int:
    return sum(int(a.nbytes) for a in (*dataset.inputs.values(), *dataset.targets.values()))


def resident_budget(devices: list) -> int:
    """Bytes of training data each device may hold (replicated, so the smallest device
    decides)."""
    budgets = []
    for device in devices:
        try:
            limit = (device.memory_stats() or {}).get("bytes_limit")
        except Exception:  # backends without memory statistics
            limit = None
        budgets.append(int(limit * DEVICE_FRACTION) if limit else CPU_BUDGET_BYTES)
    return min(budgets)


def _numeric_arrays(dataset: Any) -> bool:
    """Only in-memory numeric arrays go to the devices (not file-backed datasets, nor
    string columns a preprocessing layer turns into numbers on the host)."""
    if not isinstance(dataset, ArrayDataset) or len(dataset) == 0:
        return False
    arrays = (*dataset.inputs.values(), *dataset.targets.values())
    # ndarrays only: streamed image files (`ImageFiles`) are decoded per batch instead
    return all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays)


def resident_data(session: Any, dataset: ArrayDataset, **batching: Any) -> DeviceData | None:
    """A DeviceData for the session's training set, or None where the host path is
    used (several processes, or data over the budget). `batching`: batch_size,
    shuffle, seed, drop_remainder."""
    if session.dist is None or jax.process_count() != 1 or not _numeric_arrays(dataset):
        return None
    devices = list(session.dist.mesh.devices.flat)
    if dataset_bytes(dataset) > resident_budget(devices):
        return None
    return DeviceData(session, dataset, **batching)


class DeviceData:
    """The training set on the devices and the step that gathers its own batches."""

    def __init__(
        self,
        session: Any,
        dataset: ArrayDataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_remainder: bool,
    ):
        dist = session.dist
        self.dataset = dataset
        self.batching = dict(
            batch_size=batch_size, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder
        )
        self.replicated = dist.sharding(PartitionSpec())
        self.table_sharding = dist.sharding(PartitionSpec(None, *dist.batch_spec))
        self.batch_sharding = dist.sharding(dist.batch_spec)
        arrays = {"inputs": dataset.inputs, "targets": dataset.targets}
        self.arrays = jax.device_put(jax.tree_util.tree_map(np.asarray, arrays), self.replicated)
        self._step = make_train_step(session.graphdef, session.tx, session.objective, dist)
        self._shardings = session.shardings
        self._chunks = self._make_chunks()
        self._epoch: tuple[tuple[int, int], Any] | None = None

    def _tables(self, epoch: int, base: int) -> tuple:
        """(rows, mask, base) on the devices for `epoch`, computed once per epoch."""
        if self._epoch is None or self._epoch[0] != (epoch, base):
            rows, mask = self.dataset.epoch_rows(epoch, **self.batching)
            tables = (
                jax.device_put(rows.astype(np.int32), self.table_sharding),
                jax.device_put(mask, self.table_sharding),
                jax.device_put(np.int32(base), self.replicated),
            )
            self._epoch = ((epoch, base), tables)
        return self._epoch[1]

    def train(self, state: Any, epoch: int, index: int, count: int, step: int) -> Any:
        """Run batches `index .. index + count - 1` of `epoch` (one dispatch, or one per
        step, as `StepChunks` decides); `step` is the host's count of steps taken
        before them (= `state.step`)."""
        args = (self.arrays, *self._tables(epoch, step - index))
        return self._chunks.run(state, count, step, lambda i: args, args)

    def warm(self, abstract_state: Any, epoch: int, index: int, step: int) -> None:
        """Compile the step that runs batch `index` of `epoch` at global step `step`,
        from the state's shapes only (`StepChunks.warm`)."""
        self._chunks.warm(abstract_state, (self.arrays, *self._tables(epoch, step - index)))

    def _jit(self, fn: Callable) -> Callable:
        table, rep = self.table_sharding, self.replicated
        return jax.jit(
            fn,
            donate_argnums=0,
            in_shardings=(self._shardings, rep, table, table, rep),
            out_shardings=self._shardings,
        )

    def _make_chunks(self) -> StepChunks:
        """The single step that gathers its own batch (row `state.step - base` of the
        epoch's table) and, per chunk length, the fused program of several (like the
        host path's stacked chunks: only a shorter last chunk of an epoch compiles a
        second one)."""
        step, batch_sharding = self._step, self.batch_sharding

        def one(state, arrays, rows, mask, base):
            i = state.step - base
            index = jax.lax.dynamic_index_in_dim(rows, i, keepdims=False)
            batch = {
                **jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0, mode="clip"), arrays),
                "mask": jax.lax.dynamic_index_in_dim(mask, i, keepdims=False),
            }
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return step(state, batch)

        def fused(count: int, mode: str) -> Callable:
            def many(state, arrays, rows, mask, base):
                body = lambda s, _: one(s, arrays, rows, mask, base)  # noqa: E731
                return scan_chunk(body, state, None, count, mode)

            return self._jit(many)

        return StepChunks(self._jit(one), fused)
