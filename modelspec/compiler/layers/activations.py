"""Keras activations by name, with Keras's defaults (leaky_relu slope 0.2, exact gelu,
hard_sigmoid = relu6(x + 3) / 6, softmax over the last axis), used by the `activation:`
argument of Dense, Conv and recurrent layers; and the activation layers (ReLU, LeakyReLU,
PReLU, ELU, Softmax: NNX side of `schema/layers/activations.py`).

The layers repeat Keras's operations in Keras's order (its JAX backend calls the same
`jax.nn` functions), so results match Keras's and int inputs get the dtypes Keras gives
them, which the spec's `infer` states.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special

from modelspec.compiler.layers.base import Layer

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


def autocast(x: jax.Array) -> jax.Array:
    """What a Keras layer does to its input first: float inputs are cast to its float32
    compute dtype (float64 is kept, as `float_out` says); int and bool pass unchanged."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return x


class ReLU(Layer):
    def __init__(self, spec, x, shape, key):
        self.max_value = spec.max_value
        self.negative_slope = spec.negative_slope
        self.threshold = spec.threshold

    def __call__(self, x, *, training=False, rngs=None):
        # Keras's `activations.ReLU.static_call`, step for step: its shortcuts (leaky_relu,
        # relu6) and its casts of threshold and max_value to the input dtype decide the
        # results and dtypes of int inputs.
        x = autocast(x)
        slope, max_value, threshold = self.negative_slope, self.max_value, self.threshold
        negative = None
        if slope != 0.0:
            if max_value is None and threshold == 0:
                return jax.nn.leaky_relu(x, negative_slope=slope)
            negative = jax.nn.relu(-x + threshold) if threshold != 0 else jax.nn.relu(-x)
        clip = max_value is not None
        if threshold != 0:
            x = jnp.where(jnp.greater(x, jnp.asarray(threshold).astype(x.dtype)), x, 0)
        elif max_value == 6:
            x = jax.nn.relu6(x)
            clip = False
        else:
            x = jax.nn.relu(x)
        if clip:
            x = jnp.clip(
                x, jnp.asarray(0.0).astype(x.dtype), jnp.asarray(max_value).astype(x.dtype)
            )
        if negative is not None:
            x = x - slope * negative
        return x


class LeakyReLU(Layer):
    def __init__(self, spec, x, shape, key):
        self.negative_slope = spec.negative_slope

    def __call__(self, x, *, training=False, rngs=None):
        return jax.nn.leaky_relu(autocast(x), negative_slope=self.negative_slope)


class PReLU(Layer):
    def __init__(self, spec, x, shape, key):
        self.create(shape.params, key, {"alpha": spec.alpha_initializer})

    def __call__(self, x, *, training=False, rngs=None):
        # Keras: relu(x) - alpha * relu(-x); alpha has size 1 along the shared axes.
        x = autocast(x)
        return jax.nn.relu(x) + -self.alpha[...] * jax.nn.relu(-x)


class ELU(Layer):
    def __init__(self, spec, x, shape, key):
        self.alpha = spec.alpha

    def __call__(self, x, *, training=False, rngs=None):
        return jax.nn.elu(autocast(x), alpha=self.alpha)


class Softmax(Layer):
    def __init__(self, spec, x, shape, key):
        self.axes = spec.axes(x.rank)

    def __call__(self, x, *, training=False, rngs=None):
        x = autocast(x)
        if len(self.axes) == 1:
            return jax.nn.softmax(x, axis=self.axes[0])
        # Several axes at once: Keras's exp(x - logsumexp(x, axes)).
        return jnp.exp(x - jax.scipy.special.logsumexp(x, axis=self.axes, keepdims=True))
