"""The sharding plan of a spec, in pure Python (no JAX, no devices).

Parameters carry logical axis names (`embed`, `mlp`, `heads`, ...); `distribution.rules`
maps them onto mesh axes (merged over DEFAULT_RULES). From that this module derives each
parameter's partition spec, checks that every sharded dimension divides evenly, and
estimates per-device memory, so `summary --mesh` and the trainer agree before anything
runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelspec.compiler.stacks import Execution, stacked_params
from modelspec.errors import Diagnostic, SpecError
from modelspec.schema.optimizers import OptimizerSpec, default_optimizer
from modelspec.schema.tensors import ParamInfo

if TYPE_CHECKING:
    from modelspec.compiler.checked import CheckedSpec

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "batch": ("data", "fsdp"),
    "embed": ("fsdp",),
    "mlp": ("tensor",),
    "heads": ("tensor",),
    "kv": (),
    "vocab": ("tensor",),
    "conv_in": (),
    "conv_out": ("tensor",),
    "norm": (),
    "layers": (),
}
"""Logical axis -> mesh axes. Axes the mesh doesn't have are dropped, so the defaults
fit any mesh: data parallel on `data`, FSDP on `fsdp`, tensor parallel on `tensor`."""


def resolve_mesh(mesh: dict[str, int], device_count: int, where) -> dict[str, int]:
    """Replace a -1 size by the remaining devices; the sizes must multiply to the count."""
    known = math.prod(v for v in mesh.values() if v != -1)
    sizes = dict(mesh)
    for name, size in mesh.items():
        if size == -1:
            if device_count % known:
                raise SpecError(
                    [
                        where(
                            ("distribution", "mesh", name),
                            f"cannot fill mesh axis '{name}': {device_count} devices are not a multiple "
                            f"of the other axes' product {known}",
                            f"{name}=-1",
                            "Choose mesh sizes whose product divides the device count.",
                        )
                    ]
                )
            sizes[name] = device_count // known
    total = math.prod(sizes.values())
    if total != device_count:
        raise SpecError(
            [
                where(
                    ("distribution", "mesh"),
                    f"the mesh {sizes} needs {total} devices, but {device_count} are available",
                    str(mesh),
                    "Use -1 for one axis to take the remaining devices.",
                )
            ]
        )
    return sizes


def resolve_rules(
    rules: dict[str, str | list[str] | None], mesh: dict[str, int], where
) -> dict[str, tuple[str, ...]]:
    """DEFAULT_RULES overlaid with the spec's rules, restricted to the mesh's axes."""
    out = {k: tuple(a for a in v if a in mesh) for k, v in DEFAULT_RULES.items()}
    errors = []
    for logical, target in rules.items():
        axes = () if target is None else (target,) if isinstance(target, str) else tuple(target)
        unknown = [a for a in axes if a not in mesh]
        if unknown:
            errors.append(
                where(
                    ("distribution", "rules", logical),
                    f"mesh axis '{unknown[0]}' is not in the mesh ({', '.join(mesh)})",
                    f"{logical}: {target}",
                    "Add the axis to distribution.mesh, or map to existing axes.",
                )
            )
            continue
        out[logical] = axes
    if errors:
        raise SpecError(errors)
    return out


def partition_spec(
    axes: tuple[str | None, ...], rules: dict[str, tuple[str, ...]]
) -> tuple[tuple[str, ...] | None, ...]:
    """Logical axes -> per-dimension mesh axes. A mesh axis is used at most once per
    array (a later dimension that maps to an axis already used stays replicated)."""
    used: set[str] = set()
    spec = []
    for name in axes:
        mesh_axes = tuple(a for a in rules.get(name, ()) if a not in used) if name else ()
        used.update(mesh_axes)
        spec.append(mesh_axes or None)
    return tuple(spec)


@dataclass(frozen=True)
class ParamPlan:
    layer: str
    info: ParamInfo
    spec: tuple[tuple[str, ...] | None, ...]

    def describe(self) -> str:
        return (
            "P("
            + ", ".join(
                "None" if s is None else (repr(s[0]) if len(s) == 1 else repr(s)) for s in self.spec
            )
            + ")"
        )


@dataclass
class Plan:
    mesh: dict[str, int]
    rules: dict[str, tuple[str, ...]]
    params: list[ParamPlan] = field(default_factory=list)
    batch_axes: tuple[str, ...] = ()

    def local_shape(self, p: ParamPlan) -> tuple[int, ...]:
        """The shape of one device's shard."""
        return tuple(
            d // math.prod(self.mesh[a] for a in (s or ()))
            for d, s in zip(p.info.shape, p.spec, strict=True)
        )

    def bytes_per_device(self, trainable_only: bool = False) -> int:
        """float32 bytes of one device's parameter shards."""
        return sum(
            4 * math.prod(self.local_shape(p))
            for p in self.params
            if p.info.trainable or not trainable_only
        )

    def as_dict(self, optimizer: OptimizerSpec | None) -> dict:
        slots = (optimizer if optimizer is not None else default_optimizer()).state_slots()
        params = self.bytes_per_device()
        return {
            "mesh": self.mesh,
            "rules": {k: list(v) for k, v in self.rules.items()},
            "params_bytes_per_device": params,
            "optimizer_bytes_per_device": slots * self.bytes_per_device(trainable_only=True),
            "optimizer_slots": slots,
            "parameters": [
                {
                    "layer": p.layer,
                    "path": p.info.path,
                    "shape": list(p.info.shape),
                    "axes": list(p.info.axes),
                    "partition_spec": p.describe(),
                    "per_device_shape": list(self.local_shape(p)),
                }
                for p in self.params
            ],
        }


def plan_for(spec: CheckedSpec, mesh: dict[str, int], *, check_batch: bool = True) -> Plan:
    """Partition every parameter; raise SpecError listing every dimension that its
    mesh axes don't divide (and a batch size that the data axes don't divide)."""
    where = spec.error
    rules = resolve_rules(spec.distribution.rules, mesh, where)
    plan = Plan(mesh, rules, batch_axes=rules.get("batch", ()))
    errors: list[Diagnostic] = []
    index = {n.name: n.index for n in spec.graph.nodes}
    execution = spec.execution or Execution()
    first = {s.name: s.copies[0][0] for s in execution.stacks}  # a stack: its first layer
    for layer, info in stacked_params(spec, execution):
        pspec = partition_spec(info.axes, rules)
        for dim, (size, axes) in enumerate(zip(info.shape, pspec, strict=True)):
            n = math.prod(mesh[a] for a in (axes or ()))
            if axes and size % n:
                logical = info.axes[dim]
                errors.append(
                    where(
                        ("model", "layers", index[first.get(layer, layer)]),
                        f"layer '{layer}' {info.path} {info.shape} with logical axes "
                        f"{info.axes}: dimension {dim} ({logical} -> {'x'.join(axes)}, "
                        f"{n} shards) does not divide {size} on mesh {mesh}",
                        f"{info.path}={info.shape}",
                        f"Add `{logical}: null` to distribution.rules (replicate it), or use a "
                        f"mesh whose {'x'.join(axes)} size divides {size}.",
                    )
                )
        plan.params.append(ParamPlan(layer, info, pspec))
    if check_batch and spec.data is not None:
        n = math.prod(mesh[a] for a in plan.batch_axes)
        if spec.data.batch_size % n:
            errors.append(
                where(
                    ("data", "batch_size"),
                    f"batch_size {spec.data.batch_size} is not divisible by the batch "
                    f"mesh axes {'x'.join(plan.batch_axes)} = {n}",
                    f"batch_size={spec.data.batch_size}",
                    f"Use a multiple of {n}, or change distribution.mesh.",
                )
            )
    if errors:
        raise SpecError(errors)
    return plan


def parse_mesh(text: str) -> dict[str, int]:
    """`data=2,fsdp=2,tensor=2` -> {'data': 2, 'fsdp': 2, 'tensor': 2}."""
    out = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        name = name.strip()
        if not name or not size.strip().isdigit() or int(size) < 1:
            raise ValueError(
                f"--mesh expects name=size pairs with sizes >= 1, separated by "
                f"commas (e.g. data=2,tensor=2); got {text!r}"
            )
        if name in out:
            raise ValueError(f"--mesh names axis '{name}' twice")
        out[name] = int(size)
    return out
