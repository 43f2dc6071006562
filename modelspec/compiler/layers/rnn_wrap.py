"""Helpers of the wrapper layers (Bidirectional, TimeDistributed): building a nested
layer under its Keras weight path, reaching it again, and merging two directions.

Why nested modules under a path: the wrapper's ParamInfo paths are Keras's
(`forward_lstm/lstm_cell/kernel`), and the built variables must sit at exactly those
paths, so the nested layer's NNX module is attached under `forward_lstm/lstm_cell/`
(plain container modules for the intermediate parts, as `Layer.create` does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from modelspec.compiler.layers import nnx_class
from modelspec.schema.tensors import LayerShape, TensorType


def build_nested(
    owner: nnx.Module, spec: Any, x: TensorType, shape: LayerShape, prefix: str, key: jax.Array
) -> None:
    """Build the nested layer `spec` on input type `x` with the wrapper's variables under
    `prefix` (paths relative to it, flags such as `trainable` as the wrapper decided) and
    attach it to `owner` at `prefix`."""
    params = tuple(
        dataclasses.replace(p, path=p.path[len(prefix) :])
        for p in shape.params
        if p.path.startswith(prefix)
    )
    own = spec.infer(x)  # output types of the nested layer (variables: the wrapper's)
    inner = LayerShape(own.output, params, own.extra_outputs)
    module = nnx_class(type(spec))(spec, x, inner, key)
    parts = prefix.strip("/").split("/")
    for part in parts[:-1]:
        if not hasattr(owner, part):
            setattr(owner, part, nnx.Module())
        owner = getattr(owner, part)
    if hasattr(owner, parts[-1]):
        raise ValueError(f"nested layer path {prefix!r} is already taken")
    setattr(owner, parts[-1], module)


def nested(owner: nnx.Module, prefix: str) -> nnx.Module:
    """The nested layer attached at `prefix` by `build_nested`."""
    for part in prefix.strip("/").split("/"):
        owner = getattr(owner, part)
    return owner


def merge(mode: str | None, y: jax.Array, y_rev: jax.Array) -> tuple[jax.Array, ...]:
    """Keras Bidirectional's merge of the forward and backward outputs (a tuple: two
    tensors for `merge_mode: null`)."""
    if mode == "concat":
        return (jnp.concatenate([y, y_rev], axis=-1),)
    if mode == "sum":
        return (y + y_rev,)
    if mode == "ave":
        return ((y + y_rev) / 2,)
    if mode == "mul":
        return (y * y_rev,)
    return (y, y_rev)
