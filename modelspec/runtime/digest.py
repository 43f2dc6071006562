"""Checkpoint digests: a 64-bit fingerprint of every array, computed on device.

orbax does not notice damaged data (a flipped byte in a data file restores silently as
different weights), so every checkpoint carries a digest of its arrays, computed from
the arrays themselves when they are saved and checked again after they are restored.
It does not depend on orbax's file layout or on whether the save was asynchronous.

Each array is viewed as unsigned 32-bit words w_i (i = position in row-major order) and
summed twice modulo 2**32: sum(w_i * (2i + 1)) (odd weights: any change of a single
word changes it) and sum(mix(w_i + i * K)) (a non-linear hash, for changes of several
words). Integer sums do not depend on the order of reduction, so the digest is the same
on any mesh and any number of devices, and sharded arrays are never gathered.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _words(x: jax.Array) -> jax.Array:
    """The array's bytes as uint32 words (8-byte types become two words each)."""
    if x.dtype == jnp.bool_:
        x = x.astype(jnp.uint8)
    size = x.dtype.itemsize
    if size == 8:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)  # adds a trailing axis of 2
    unsigned = {4: jnp.uint32, 2: jnp.uint16, 1: jnp.uint8}[size]
    return jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32)


def _mix(h: jax.Array) -> jax.Array:
    """murmur3's 32-bit finalizer."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _leaf(x: jax.Array) -> jax.Array:
    w = _words(x)
    index = jnp.zeros(w.shape, jnp.uint32)
    stride = 1
    for axis in reversed(range(w.ndim)):  # row-major position without a reshape
        index = index + jax.lax.broadcasted_iota(jnp.uint32, w.shape, axis) * jnp.uint32(
            stride % 2**32
        )
        stride *= w.shape[axis]
    weighted = jnp.sum(w * (index * jnp.uint32(2) + jnp.uint32(1)), dtype=jnp.uint32)
    mixed = jnp.sum(_mix(w + index * jnp.uint32(0x9E3779B1)), dtype=jnp.uint32)
    return jnp.stack([weighted, mixed])


@jax.jit
def _digests(leaves: list[jax.Array]) -> jax.Array:
    if not leaves:
        return jnp.zeros((0, 2), jnp.uint32)
    return jnp.stack([_leaf(x) for x in leaves])


def digests(flat: dict[str, Any]) -> list[str]:
    """One hex string per array of a flat checkpoint dict, in key order. Every process
    of a multi-process run must call this (it is one jitted computation)."""
    keys = sorted(flat)
    out = _digests([jnp.asarray(flat[k]) for k in keys])
    host = np.asarray(out if out.is_fully_addressable else out.addressable_data(0))
    return [f"{int(a):08x}{int(b):08x}" for a, b in host]
