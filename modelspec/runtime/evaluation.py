"""Reading results: metric accumulators to host floats, and evaluation over a dataset
(inference mode, accumulated on device, read once at the end)."""

from __future__ import annotations

import jax
import numpy as np

from modelspec.compiler.sharding.mesh import put_batch
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
    """Loss and metrics over a dataset (inference mode), accumulated on device."""
    metrics = fresh_metrics(session)
    n = dataset.num_batches(batch_size, False)
    for i in range(n):
        batch = dataset.batch(0, i, batch_size, shuffle=False, seed=0, drop_remainder=False)
        metrics = session.eval_step(state, metrics, put_batch(session.dist, batch))
    return to_host(session.objective.results(metrics))
