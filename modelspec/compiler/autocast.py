"""Keras's dtype-policy autocast around one built layer's call (JAX side).

`CompiledModel` wraps each layer whose policy is not float32 (`schema/precision.py`
decides the `PolicyRule`); the wrapper does what Keras's `Layer.__call__` and its
`AutocastScope` do, so no NNX class needs to know about policies:

1. float array arguments are cast to the compute dtype (unless the layer's spec class
   says `autocast = False`); with `float32_compute` they are then upcast to float32;
2. during the call the layer's float `Param`/`Frozen` variables hold their value cast
   to the compute dtype (float32 for `float32_compute`); the float32 originals are put
   back afterwards, so the state keeps float32 variables and gradients flow through
   the cast back to them. Batch statistics are never cast (Keras creates them with
   `autocast=False`);
3. float outputs are cast to the compute dtype.

Shape inference applies the same rule to types, so inferred dtypes equal these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from modelspec.compiler.layers.base import Frozen
from modelspec.schema.precision import PolicyRule


def _is_float(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating)


def _cast_floats(x: Any, dtype: Any) -> Any:
    """Cast float arrays in plain containers; anything else (`rngs`, flags, bool masks)
    is passed through untouched — never rebuilt, as a pytree map would rebuild Rngs."""
    if _is_float(x):
        return x.astype(dtype)
    if isinstance(x, list | tuple) and not hasattr(x, "_fields"):
        return type(x)(_cast_floats(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast_floats(v, dtype) for k, v in x.items()}
    return x


@contextlib.contextmanager
def cast_variables(layer: nnx.Module, dtype: Any) -> Iterator[None]:
    """Let `layer`'s float weights (trainable or frozen) read as `dtype` inside the
    block; their stored values are restored on exit."""
    saved = []
    for _, var in nnx.iter_graph(layer):
        if isinstance(var, nnx.Param | Frozen) and _is_float(var.get_value()):
            value = var.get_value()
            if value.dtype != dtype:
                saved.append((var, value))
                var.set_value(value.astype(dtype))
    try:
        yield
    finally:
        for var, value in saved:
            var.set_value(value)


class Autocast:
    """A callable standing in for a layer under a mixed dtype policy (see the module
    docstring). Made per call, never stored in the model."""

    def __init__(self, layer: nnx.Module, rule: PolicyRule):
        self.layer = layer
        self.rule = rule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compute = jnp.dtype(self.rule.compute)
        inner = jnp.dtype(jnp.float32) if self.rule.float32_compute else compute
        if self.rule.autocast:
            args, kwargs = _cast_floats((args, kwargs), compute)
        if self.rule.float32_compute:
            args, kwargs = _cast_floats((args, kwargs), inner)
        with cast_variables(self.layer, inner):
            out = self.layer(*args, **kwargs)
        return _cast_floats(out, compute)


def autocast(layer: nnx.Module, rule: PolicyRule | None) -> Any:
    """`layer` itself under the float32 policy (rule None), else its Autocast wrapper."""
    return layer if rule is None else Autocast(layer, rule)
