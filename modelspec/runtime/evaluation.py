"""Reading results: metric accumulators to host floats, and evaluation over a dataset
(inference mode, accumulated on device, read once at the end)."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from modelspec.compiler.sharding.mesh import put_batch
from modelspec.runtime.data.prefetch import Chunk, Prefetcher
from modelspec.runtime.session import Session


def to_host(values: dict[str, jax.Array]) -> dict[str, float]:
    out = {}
    for k, v in jax.device_get(values).items():
        arr = np.asarray(v)
        out[k] = float(arr) if arr.ndim == 0 else float(np.mean(arr))
    return out


def fresh_metrics(session: Session):
    """Zeroed metric accumulators, placed (replicated) on the mesh."""
    return jax.device_put(session.objective.init_metrics(), session.shardings.metrics)


def evaluate_dataset(session: Session, state, dataset, batch_size: int) -> dict[str, float]:
    """Loss and metrics over a dataset (inference mode), accumulated on device. Batches
    are built ahead by the training input pipeline's background workers (streamed image
    files decode in parallel, not on this thread between eval steps), each process
    building only its own rows, and copied to the devices ahead of the step."""
    metrics = fresh_metrics(session)
    n = dataset.num_batches(batch_size, False)
    plan = [Chunk(0, i, 1) for i in range(n)]
    batching = dict(batch_size=batch_size, shuffle=False, seed=0, drop_remainder=False)
    data = session.spec.data
    with Prefetcher(
        dataset,
        iter(plan),
        batching=batching,
        stacked=False,
        put=partial(put_batch, session.dist, local=True),
        workers=data.workers,
        depth=data.max_queue_size,
        part=(jax.process_index(), jax.process_count()),
    ) as batches:
        for chunk in plan:
            metrics = session.eval_step(state, metrics, batches.get(chunk))
    return to_host(session.objective.results(metrics))
