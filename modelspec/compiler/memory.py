"""A lower bound on the memory one device needs to train a spec, from shapes alone.

Why: a typo such as `units: 1000000000000` passes every shape rule, and allocating it
makes XLA fail deep inside (or the process sit forever). The bound counts what
training must hold at once — parameters, their gradients, the optimizer's slots and
each layer's output for the backward pass — sharded as the mesh says. It leaves out
XLA's temporaries, so it never refuses a model that would fit. `check` refuses above
`MAX_DEVICE_BYTES` (more than any accelerator has); `train` compares it with the real
devices before anything is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from modelspec.compiler.sharding.plan import Plan
from modelspec.errors import Diagnostic, SpecError
from modelspec.schema.optimizers import default_optimizer

if TYPE_CHECKING:
    from modelspec.compiler.checked import CheckedSpec

BYTES_PER_PARAM = 4
"""float32, the dtype every parameter has today."""


def human_bytes(n: float) -> str:
    """1536 -> '1.50 KB' (binary units, up to EB so absurd sizes read as such)."""
    units = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
    if n >= 1024 ** len(units):  # past 1024 EB: an int this large overflows a float
        return f"{Decimal(n) / 1024 ** (len(units) - 1):.2E} EB"
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.2f} EB"


MAX_DEVICE_BYTES = 1 << 40
"""1 TiB per device: above what any accelerator (or most hosts) holds, so `check`
refuses such a spec outright."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device (lower bounds) and the layer that holds the most parameters."""

    params: int
    gradients: int
    optimizer: int
    optimizer_slots: int
    activations: int
    batch_per_device: int
    largest_layer: str | None
    largest_index: int | None
    largest_params: int

    @property
    def total(self) -> int:
        return self.params + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        return (
            f"parameters {human_bytes(self.params)}, gradients {human_bytes(self.gradients)}, "
            f"optimizer state {human_bytes(self.optimizer)} ({self.optimizer_slots} slot(s)), "
            f"activations {human_bytes(self.activations)} at {self.batch_per_device} "
            "examples per device"
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "params": self.params,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "total": self.total,
        }


def estimate(spec: CheckedSpec, plan: Plan | None = None) -> MemoryEstimate:
    """The per-device lower bound for training `spec` (replicated when `plan` is None)."""
    an = spec
    nodes = sorted(an.graph.nodes, key=lambda n: n.index)
    if plan is not None:
        params = plan.bytes_per_device()
        trainable = plan.bytes_per_device(trainable_only=True)
        batch_shards = math.prod(plan.mesh[a] for a in plan.batch_axes)
    else:
        params = BYTES_PER_PARAM * sum(
            s.trainable_count + s.non_trainable_count for s in an.shapes.values()
        )
        trainable = BYTES_PER_PARAM * sum(s.trainable_count for s in an.shapes.values())
        batch_shards = 1
    batch = spec.data.batch_size if spec.data is not None else 32
    per_device = max(1, batch // max(1, batch_shards))
    outputs = sum(
        math.prod(d for d in out.shape if d is not None)
        for shape in an.shapes.values()
        for out in shape.outputs
    )
    largest = max(
        nodes,
        key=lambda n: an.shapes[n.name].trainable_count + an.shapes[n.name].non_trainable_count,
        default=None,
    )
    largest_params = (
        an.shapes[largest.name].trainable_count + an.shapes[largest.name].non_trainable_count
        if largest is not None
        else 0
    )
    optimizer = spec.optimizer if spec.optimizer is not None else default_optimizer()
    slots = optimizer.state_slots()
    return MemoryEstimate(
        params=params,
        gradients=trainable,
        optimizer=slots * trainable,
        optimizer_slots=slots,
        activations=BYTES_PER_PARAM * outputs * per_device,
        batch_per_device=per_device,
        largest_layer=largest.name if largest is not None else None,
        largest_index=largest.index if largest is not None else None,
        largest_params=largest_params,
    )


def too_large(spec: CheckedSpec, est: MemoryEstimate, capacity: int, what: str) -> Diagnostic:
    """The refusal: the figures, what the devices have, and what to change."""
    at = ("model", "layers", est.largest_index) if est.largest_index is not None else ("model",)
    hint = (
        f"The largest layer is '{est.largest_layer}' with {est.largest_params:,} parameters: "
        "check its sizes; or lower data.batch_size, or shard parameters over more devices "
        "(distribution.mesh with an `fsdp` axis)."
    )
    return spec.error(
        at,
        f"training needs at least {human_bytes(est.total)} per device "
        f"({est.describe()}), more than {what} ({human_bytes(capacity)})",
        hint=hint,
    )


def spec_limit_error(spec: CheckedSpec) -> Diagnostic | None:
    """`check`'s guard: refuse specs whose bound exceeds MAX_DEVICE_BYTES on the spec's
    own mesh (axes of size -1 taken as 1, so the bound stays a bound)."""
    from modelspec.compiler.sharding.plan import plan_for

    plan = None
    if spec.distribution is not None:
        mesh = {k: max(v, 1) for k, v in spec.distribution.mesh.items()}
        try:
            plan = plan_for(spec, mesh, check_batch=False)
        except SpecError:
            plan = None
    est = estimate(spec, plan)
    if est.total <= MAX_DEVICE_BYTES:
        return None
    return too_large(spec, est, MAX_DEVICE_BYTES, "the limit of `check` for one device")
