"""Devices, meshes and shardings: the runtime half of `distribution:`.

One mode throughout: a mesh with Auto axis types; parameters, optimizer state and
batches get NamedShardings from the pure-Python plan (`compiler/sharding.py`), the
jitted steps take explicit in/out shardings, and layers add
`with_sharding_constraint` on activations where it matters (batch axis everywhere;
heads and MLP hidden for tensor parallelism) through `constrain()`. Multi-host runs use
JAX's own distributed runtime (`jax.distributed`), never a home-made one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.sharding.constraints import activation_sharding
from modelspec.compiler.sharding.plan import Plan, plan_for, resolve_mesh
from modelspec.errors import Diagnostic, SpecError


@dataclass
class Distribution:
    mesh: Mesh
    plan: Plan

    @property
    def batch_spec(self) -> PartitionSpec:
        axes = self.plan.batch_axes
        return PartitionSpec(axes if axes else None)

    def sharding(self, spec: PartitionSpec) -> NamedSharding:
        return NamedSharding(self.mesh, spec)

    def param_spec(self, layer: str, path: str) -> PartitionSpec:
        return self._specs.get((layer, path), PartitionSpec())

    def __post_init__(self) -> None:
        self._specs = {(p.layer, p.info.path): PartitionSpec(*p.spec) for p in self.plan.params}

    def active(self):
        """Activation constraints apply while tracing inside this context."""
        return activation_sharding(self.mesh, self.plan.rules)


def setup(spec: CheckedSpec, devices: list | None = None) -> Distribution:
    """Build the mesh (all devices by default) and check the plan; positioned errors."""
    devices = devices if devices is not None else jax.devices()
    sizes = resolve_mesh(spec.distribution.mesh, len(devices), spec.error)
    plan = plan_for(spec, sizes)
    names = tuple(sizes)
    mesh = jax.make_mesh(
        tuple(sizes.values()), names, axis_types=(AxisType.Auto,) * len(names), devices=devices
    )
    return Distribution(mesh, plan)


def state_shardings(dist: Distribution, abstract_state: Any) -> Any:
    """NamedShardings for a TrainState: model variables by the plan; optimizer slots
    that mirror a parameter (same trailing path and shape) like that parameter;
    everything else (step, counters, metrics, RNG) replicated."""
    by_suffix: dict[tuple, tuple] = {}
    for tree in (abstract_state.params, abstract_state.frozen, abstract_state.batch_stats):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            keys = tuple(_key(k) for k in path)
            layer, rel = keys[1], "/".join(str(k) for k in keys[2:])
            by_suffix[keys] = (dist.param_spec(layer, rel), leaf.shape)
    replicated = dist.sharding(PartitionSpec())

    def for_leaf(path, leaf):
        keys = tuple(_key(k) for k in path)
        for cut in range(len(keys)):
            hit = by_suffix.get(keys[cut:])
            if hit is not None and hit[1] == getattr(leaf, "shape", None):
                return dist.sharding(hit[0])
        return replicated

    return jax.tree_util.tree_map_with_path(for_leaf, abstract_state)


def _key(k) -> Any:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return getattr(k, attr)
    return str(k)


def put_batch(
    dist: Distribution, batch: dict, *, stacked: bool = False, local: bool = False
) -> dict:
    """A host batch (the global batch, identical on every process) -> global arrays
    sharded on the batch axis; each process contributes only its rows. `stacked`:
    batches stacked on a leading steps axis (steps_per_execution). `local`: `batch`
    holds only this process's rows already (rows `[pid * per, (pid + 1) * per)` of
    the global batch, as built by a pipeline that reads no other rows)."""
    spec = PartitionSpec(None, *dist.batch_spec) if stacked else dist.batch_spec
    sharding = dist.sharding(spec)
    nproc, pid = jax.process_count(), jax.process_index()
    axis = 1 if stacked else 0

    def put(x):
        x = np.asarray(x)
        if nproc == 1:
            return jax.device_put(x, sharding)
        if local:
            shape = (*x.shape[:axis], x.shape[axis] * nproc, *x.shape[axis + 1 :])
            return jax.make_array_from_process_local_data(sharding, x, shape)
        per = x.shape[axis] // nproc
        rows = np.take(x, np.arange(pid * per, (pid + 1) * per), axis=axis)
        return jax.make_array_from_process_local_data(sharding, rows, x.shape)

    return jax.tree_util.tree_map(put, batch)


HEARTBEAT_TIMEOUT_S = 30
"""A process silent this long is declared dead by JAX's coordination service."""


def initialize_processes(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    heartbeat_timeout: int = HEARTBEAT_TIMEOUT_S,
) -> None:
    """Join a multi-process run through `jax.distributed` (flags, then MODELSPEC_*
    environment variables, then JAX's auto-detection on SLURM / Cloud TPU). A dead
    process is detected by heartbeat within `heartbeat_timeout` seconds; with JAX's
    recoverability on, the service then leaves the others running so that
    `runtime/peers.py` can stop them with a message and exit code 4 instead of JAX
    aborting them (exit 134)."""
    try:  # a JAX without the switch keeps its default (the others abort, exit 134)
        jax.config.update("jax_enable_recoverability", True)
    except AttributeError:
        pass
    coordinator = coordinator or os.environ.get("MODELSPEC_COORDINATOR")
    if num_processes is None and os.environ.get("MODELSPEC_NUM_PROCESSES"):
        num_processes = int(os.environ["MODELSPEC_NUM_PROCESSES"])
    if process_id is None and os.environ.get("MODELSPEC_PROCESS_ID"):
        process_id = int(os.environ["MODELSPEC_PROCESS_ID"])
    if coordinator is not None:
        if num_processes is None or process_id is None:
            raise SpecError(
                [
                    Diagnostic(
                        "<command line>",
                        0,
                        0,
                        "--coordinator",
                        "a multi-process run needs --num-processes and "
                        "--process-id with --coordinator",
                    )
                ]
            )
        jax.distributed.initialize(
            coordinator,
            num_processes,
            process_id,
            heartbeat_timeout_seconds=heartbeat_timeout,
            initialization_timeout=120,
            shutdown_timeout_seconds=30,
        )
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "," in os.environ.get(
        "TPU_WORKER_HOSTNAMES", ""
    ):
        # SLURM job steps and multi-host TPU slices: JAX detects the cluster itself.
        jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat_timeout)


def is_main_process() -> bool:
    return jax.process_index() == 0
