"""Activation sharding constraints by logical axis name.

Layers call `constrain(x, ("batch", None, "mlp"))` at the points where the layout
matters (layer outputs on the batch axis; MLP hidden and attention heads for tensor
parallelism). Outside a distributed step (no active mesh) it does nothing, so layers
stay plain Flax NNX modules.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import jax
from jax.sharding import NamedSharding, PartitionSpec

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar(
    "modelspec_activation_sharding", default=None
)


@contextlib.contextmanager
def activation_sharding(mesh, rules: dict[str, tuple[str, ...]]):
    """Make `constrain` effective while tracing inside this context."""
    token = _ACTIVE.set((mesh, rules))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def constrain(x: jax.Array, axes: tuple[str | None, ...]) -> jax.Array:
    """Constrain `x` by logical axes; dimensions their mesh axes don't divide stay
    replicated, and each mesh axis is used once."""
    active = _ACTIVE.get()
    if active is None or len(axes) != x.ndim:
        return x
    mesh, rules = active
    used: set[str] = set()
    spec = []
    for size, name in zip(x.shape, axes, strict=True):
        mesh_axes = tuple(a for a in rules.get(name, ()) if a not in used) if name else ()
        n = math.prod(mesh.shape[a] for a in mesh_axes)
        if mesh_axes and size % n == 0:
            used.update(mesh_axes)
            spec.append(mesh_axes)
        else:
            spec.append(None)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(*spec)))
