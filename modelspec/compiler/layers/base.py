"""What every built layer shares: variables created from the inferred ParamInfo list.

Shape inference (the spec's `infer`) already decided each variable's path, shape and
logical axes; NNX layers only choose initializers. Creating variables from that list guarantees that what
`summary` promises is exactly what gets built (the conformance tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from modelspec.compiler.layers.initializers import initialize
from modelspec.schema.tensors import ParamInfo


class Frozen(nnx.Variable):
    """Weights of a layer with `trainable: false`: kept, saved, never updated."""


def variable(info: ParamInfo, value: jax.Array) -> nnx.Variable:
    if info.collection == "batch_stats":
        return nnx.BatchStat(value, logical_axes=info.axes)
    if not info.trainable:
        return Frozen(value, logical_axes=info.axes)
    return nnx.Param(value, logical_axes=info.axes)


class Layer(nnx.Module):
    """Base of built layers. Subclasses call `self.create(...)` in `__init__` and
    implement `__call__(x, *, training, rngs)` (merge layers get a list; named-argument
    layers get keyword tensors)."""

    def create(
        self,
        params: Sequence[ParamInfo],
        key: jax.Array,
        initializers: dict[str, Any],
        fan_axes: dict[str, tuple] | None = None,
    ) -> None:
        """Create one variable per ParamInfo; nested paths ('query/kernel') become
        submodules so the NNX path matches Keras's weight path."""
        keys = jax.random.split(key, max(len(params), 1))
        for info, k in zip(params, keys, strict=False):
            name = info.path.split("/")[-1]
            value = initialize(
                initializers[info.path],
                k,
                info.shape,
                jnp.float32,
                fan_axes=(fan_axes or {}).get(info.path),
            )
            owner = self
            for part in info.path.split("/")[:-1]:
                if not hasattr(owner, part):
                    setattr(owner, part, nnx.Module())
                owner = getattr(owner, part)
            setattr(owner, name, variable(info, value))

    def has(self, name: str) -> bool:
        return hasattr(self, name)

    def compute_mask(self, inputs: Any, masks: Any) -> jax.Array | None:
        """The output's Keras mask, from the inputs and their masks (the call kind's
        form). The model calls it only where shape inference found the output masked
        (the spec's `infer_mask`), so the default is Keras's: the first input's mask
        passes through. Layers that compute a mask (Embedding, Masking) override it."""
        if isinstance(masks, dict):
            return next(iter(masks.values()), None)
        return masks[0] if isinstance(masks, list) else masks
