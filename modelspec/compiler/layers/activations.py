"""Keras activations by name, with Keras's defaults (leaky_relu slope 0.2, exact gelu,
hard_sigmoid = relu6(x + 3) / 6, softmax over the last axis)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.2),
    "elu": lambda x: jax.nn.elu(x, 1.0),
    "selu": jax.nn.selu,
    "celu": lambda x: jax.nn.celu(x, 1.0),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": lambda x: jax.nn.relu6(x + 3.0) / 6.0,
    "hard_silu": lambda x: x * jax.nn.relu6(x + 3.0) / 6.0,
    "hard_swish": lambda x: x * jax.nn.relu6(x + 3.0) / 6.0,
    "hard_tanh": lambda x: jnp.clip(x, -1.0, 1.0),
    "log_sigmoid": jax.nn.log_sigmoid,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
    "log_softmax": lambda x: jax.nn.log_softmax(x, axis=-1),
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "exponential": jnp.exp,
}


def activation(name: str | None) -> Callable[[jax.Array], jax.Array]:
    return ACTIVATION_FNS["linear" if name is None else name]
