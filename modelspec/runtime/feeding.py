"""How the training loop gets its batches, decided once per run: the text layers'
encoding (host stage), small in-memory data kept on the devices (`device_data.py`), or
host batches built ahead by background workers (`data/prefetch.py`). Split from the
trainer so the loop module stays about the loop."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax

from modelspec.compiler.sharding.mesh import put_batch
from modelspec.runtime.data.prefetch import Prefetcher, chunk_plan
from modelspec.runtime.device_data import DeviceData, resident_data


def batching(spec: Any) -> dict[str, Any]:
    """The batch-order arguments every dataset call takes (the order is a pure function
    of them and the epoch)."""
    d = spec.data
    return dict(
        batch_size=d.batch_size, shuffle=d.shuffle, seed=spec.seed, drop_remainder=d.drop_remainder
    )


def place(session: Any, dataset: Any) -> DeviceData | None:
    """Small in-memory training data kept on the devices (None: host batches)."""
    return resident_data(session, dataset, **batching(session.spec))


def encode_text(
    session: Any, data: Any, *, restored: bool, run_dir: Path, main: bool, report: Callable
) -> Any:
    """The host (text) layers' state — restored with the checkpoint, or adapted on the
    training split on a fresh run — written to the run directory (the checkpoints carry
    it too); then both splits encoded once."""
    host = session.host
    if not restored:
        host.adapt(data.train, report)
    if main:
        host.write(run_dir)
    return host.encode_datasets(data)


def prefetcher(session: Any, dataset: Any, steps_per_epoch: int, epoch: int, index: int):
    """The host batches from (epoch, index) to the end of the run, built by background
    workers in the loop's order and copied to the devices ahead of the step; each
    process builds only its own rows."""
    spec = session.spec
    d, spe = spec.data, spec.train.steps_per_execution
    return Prefetcher(
        dataset,
        chunk_plan(steps_per_epoch, spe, spec.train.epochs, epoch, index),
        batching=batching(spec),
        stacked=spe > 1,
        put=partial(put_batch, session.dist, stacked=spe > 1, local=True),
        workers=d.workers,
        depth=d.max_queue_size,
        part=(jax.process_index(), jax.process_count()),
    )


__all__ = ["batching", "encode_text", "place", "prefetcher"]
