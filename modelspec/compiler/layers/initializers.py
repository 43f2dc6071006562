"""Keras initializers in JAX: same names, same distributions, same fan rules.

Values differ from Keras's bit for bit (different RNG), but the distributions are the
same, so a spec trains like its Keras twin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

Shape = tuple[int, ...]


def compute_fans(
    shape: Shape, in_axes: Sequence[int] | None = None, out_axes: Sequence[int] | None = None
) -> tuple[int, int]:
    """Keras's `compute_fans` (conv kernels: receptive field x channels)."""
    if in_axes is not None and out_axes is not None:
        return math.prod(shape[a] for a in in_axes), math.prod(shape[a] for a in out_axes)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


def variance_scaling(
    key, shape: Shape, dtype, scale: float, mode: str, distribution: str, fans: tuple[int, int]
) -> jax.Array:
    fan_in, fan_out = fans
    denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    scale = scale / max(1.0, denom)
    if distribution == "truncated_normal":
        stddev = math.sqrt(scale) / 0.87962566103423978
        return stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
    if distribution == "untruncated_normal":
        return math.sqrt(scale) * jax.random.normal(key, shape, dtype)
    limit = math.sqrt(3.0 * scale)
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def orthogonal(key, shape: Shape, dtype, gain: float = 1.0) -> jax.Array:
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q.reshape(shape)).astype(dtype)


_VS = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def initialize(
    spec,
    key,
    shape: Shape,
    dtype=jnp.float32,
    *,
    fan_axes: tuple[Sequence[int], Sequence[int]] | None = None,
) -> jax.Array:
    """Draw a value for `shape` from a spec initializer (a name or a config model)."""
    fans = compute_fans(shape, *(fan_axes or (None, None)))
    name = spec if isinstance(spec, str) else spec.type
    if name in _VS:
        return variance_scaling(key, shape, dtype, *_VS[name], fans)
    if name == "zeros":
        return jnp.zeros(shape, dtype)
    if name == "ones":
        return jnp.ones(shape, dtype)
    if name in ("random_normal", "normal", "RandomNormal"):
        mean, std = (0.0, 0.05) if isinstance(spec, str) else (spec.mean, spec.stddev)
        return mean + std * jax.random.normal(key, shape, dtype)
    if name in ("truncated_normal", "TruncatedNormal"):
        mean, std = (0.0, 0.05) if isinstance(spec, str) else (spec.mean, spec.stddev)
        return mean + std * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
    if name in ("random_uniform", "uniform", "RandomUniform"):
        lo, hi = (-0.05, 0.05) if isinstance(spec, str) else (spec.minval, spec.maxval)
        return jax.random.uniform(key, shape, dtype, lo, hi)
    if name == "Constant":
        return jnp.full(shape, spec.value, dtype)
    if name == "VarianceScaling":
        return variance_scaling(key, shape, dtype, spec.scale, spec.mode, spec.distribution, fans)
    if name in ("orthogonal", "Orthogonal"):
        return orthogonal(key, shape, dtype, 1.0 if isinstance(spec, str) else spec.gain)
    if name == "identity":
        if len(shape) != 2:
            raise ValueError(f"identity initializer needs a 2D shape, got {shape}")
        return jnp.eye(*shape, dtype=dtype)
    raise ValueError(f"unknown initializer {name!r}")
