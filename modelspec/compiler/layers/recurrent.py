"""Recurrent layers: LSTM and GRU, numerically equal to Keras 3's generic (CPU) path.

Why not `nnx.RNN`: it draws from an RNG stream in `__call__` to build its initial carry,
which breaks inside `jax.jit` over merged state. Here the zero carry is built by hand and
the cell runs under `jax.lax.scan` (fully unrolled when the spec says `unroll: true`).

Keras semantics reproduced here (keras/src/layers/rnn/{lstm,gru,rnn}.py):
- weights: kernel (in, G*u), recurrent_kernel (u, G*u); gates i,f,c,o (LSTM) / z,r,h (GRU);
- the input projection (and input bias) does not depend on the carry, so it is computed
  for all timesteps at once before the scan (same values, one big matmul);
- `go_backwards` reverses the input; the returned sequence stays in processing order
  (Keras flips the `scan(reverse=True)` outputs back), and the last output is the state
  after the whole reversed pass;
- dropout: ONE mask per sequence (DropoutRNNCell caches it across timesteps). With
  `recurrent_dropout > 0` Keras switches the cell to `implementation=1`, which draws one
  independent mask per gate for the inputs and for the state; otherwise a single input
  mask is shared by all gates. Masks are only drawn when `0 < rate < 1` and training.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.activations import activation
from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.initializers import initialize


def _masks(rngs, rate: float, count: int, shape: tuple[int, ...], dtype) -> jax.Array | None:
    """`count` dropout masks (scaled by 1/(1-rate), as Keras's `random.dropout(ones)`),
    stacked on a leading axis; None when no dropout applies."""
    if not 0.0 < rate < 1.0:
        return None
    keep = jax.random.bernoulli(rngs.dropout(), 1.0 - rate, (count, *shape))
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


class _Recurrent(Layer):
    """Shared machinery: variables, masks, input projection, scan and output selection.
    Subclasses set GATES and implement `_step(carry, xz_t, rk, rbias, rmask) -> (carry, h)`
    (recurrent kernel and recurrent bias passed in as arrays) and
    `_zero_carry(batch, dtype)`."""

    GATES = 0

    def __init__(self, spec, x, shape, key):
        self.units = spec.units
        self.act = spec.activation
        self.rec_act = spec.recurrent_activation
        self.use_bias = spec.use_bias
        self.dropout = float(spec.dropout)
        self.recurrent_dropout = float(spec.recurrent_dropout)
        self.return_sequences = spec.return_sequences
        self.go_backwards = spec.go_backwards
        self.unroll = spec.unroll
        init_key, bias_key = jax.random.split(key)
        self.create(
            shape.params,
            init_key,
            {
                "kernel": spec.kernel_initializer,
                "recurrent_kernel": spec.recurrent_initializer,
                "bias": spec.bias_initializer,
            },
        )
        self._custom_bias(spec, bias_key)

    def _custom_bias(self, spec, key) -> None:
        """Hook for initial-bias rules that differ from the plain initializer (LSTM)."""

    def _bias_parts(self):
        """-> (input bias (G*u,) or None, recurrent bias (G*u,) or None)."""
        if not self.has("bias"):
            return None, None
        return self.bias[...], None

    def _input_projection(self, x, masks):
        """(B, T, d) -> (B, T, G*u): x @ kernel (+ input bias), with input dropout."""
        kernel = self.kernel[...]
        if masks is None:
            xz = jnp.matmul(x, kernel)
        elif masks.shape[0] == 1:  # one mask shared by every gate (implementation 2)
            xz = jnp.matmul(x * masks[0][:, None, :], kernel)
        else:  # one mask per gate (implementation 1)
            g, u = self.GATES, self.units
            xz = jnp.einsum(
                "gbtd,dgu->btgu",
                x[None] * masks[:, :, None, :],
                kernel.reshape(kernel.shape[0], g, u),
            )
            xz = xz.reshape(*x.shape[:2], g * u)
        bias, _ = self._bias_parts()
        return xz if bias is None else xz + bias

    def _recurrent(self, h, rk, rmask, lo: int, hi: int):
        """Gates [lo, hi) of the state projection; with per-gate recurrent masks each
        gate sees its own masked copy of `h` (Keras implementation 1)."""
        u = self.units
        if rmask is None:
            return jnp.matmul(h, rk[:, lo * u : hi * u])
        parts = [jnp.matmul(h * rmask[g], rk[:, g * u : (g + 1) * u]) for g in range(lo, hi)]
        return jnp.concatenate(parts, axis=-1)

    def __call__(self, x, *, training=False, rngs=None):
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        x = x.astype(dtype)
        batch = x.shape[0]
        imask = rmask = None
        if training:
            per_gate = self.recurrent_dropout > 0.0
            imask = _masks(
                rngs, self.dropout, self.GATES if per_gate else 1, (batch, x.shape[-1]), dtype
            )
            rmask = _masks(rngs, self.recurrent_dropout, self.GATES, (batch, self.units), dtype)
        # Variables are read once, outside the scan body: the body only sees arrays.
        rk, (ibias, rbias) = self.recurrent_kernel[...], self._bias_parts()
        kernel = self.kernel[...]
        if imask is None:
            # Project each step inside the scan: on CPU this beats one big hoisted
            # (B, T, G*u) matmul plus its time-major transpose, forward and backward.
            xs = jnp.swapaxes(x, 0, 1)

            def project(x_t):
                z = jnp.matmul(x_t, kernel)
                return z if ibias is None else z + ibias
        else:
            xs = jnp.swapaxes(self._input_projection(x, imask), 0, 1)

            def project(xz_t):
                return xz_t

        if self.go_backwards:
            xs = jnp.flip(xs, axis=0)

        def step(carry, x_t):
            carry, h = self._step(carry, project(x_t), rk, rbias, rmask)
            # Only emit per-step outputs when they are returned: otherwise the scan
            # would write (and the backward pass re-read) the whole sequence for nothing.
            return carry, (h if self.return_sequences else None)

        carry, outputs = jax.lax.scan(
            step, self._zero_carry(batch, dtype), xs, unroll=True if self.unroll else 1
        )
        if self.return_sequences:
            return jnp.swapaxes(outputs, 0, 1)
        return carry[0] if isinstance(carry, tuple) else carry


class LSTM(_Recurrent):
    """Keras LSTM: c = f*c + i*act(zc), h = o*act(c), gates i, f, c, o."""

    GATES = 4

    def _custom_bias(self, spec, key) -> None:
        """unit_forget_bias: Keras builds the bias as concat(init(u), ones(u), init(2u)),
        so the forget-gate slice is exactly one and the others keep their own fans."""
        if not (self.use_bias and spec.unit_forget_bias):
            return
        u = self.units
        k1, k2 = jax.random.split(key)
        value = jnp.concatenate(
            [
                initialize(spec.bias_initializer, k1, (u,)),
                jnp.ones((u,), jnp.float32),
                initialize(spec.bias_initializer, k2, (2 * u,)),
            ]
        )
        self.bias[...] = value.astype(self.bias[...].dtype)

    def _zero_carry(self, batch, dtype):
        zeros = jnp.zeros((batch, self.units), dtype)
        return zeros, zeros

    def _step(self, carry, xz_t, rk, rbias, rmask):
        h, c = carry
        z = xz_t + self._recurrent(h, rk, rmask, 0, 4)
        zi, zf, zc, zo = jnp.split(z, 4, axis=-1)
        rec = activation(self.rec_act)
        act = activation(self.act)
        c = rec(zf) * c + rec(zi) * act(zc)
        h = rec(zo) * act(c)
        return (h, c), h


class GRU(_Recurrent):
    """Keras GRU, gates z, r, h; h' = z*h + (1-z)*hh. With `reset_after` the reset gate
    multiplies the (biased) recurrent projection; without it, it multiplies the state
    before the candidate's recurrent matmul."""

    GATES = 3

    def __init__(self, spec, x, shape, key):
        self.reset_after = spec.reset_after
        super().__init__(spec, x, shape, key)

    def _bias_parts(self):
        if not self.has("bias"):
            return None, None
        bias = self.bias[...]
        if self.reset_after:
            return bias[0], bias[1]
        return bias, None

    def _zero_carry(self, batch, dtype):
        return jnp.zeros((batch, self.units), dtype)

    def _step(self, h, xz_t, rk, rbias, rmask):
        u = self.units
        rec = activation(self.rec_act)
        x_z, x_r, x_h = xz_t[:, :u], xz_t[:, u : 2 * u], xz_t[:, 2 * u :]
        if self.reset_after:
            inner = self._recurrent(h, rk, rmask, 0, 3)
            if rbias is not None:
                inner = inner + rbias
            r_z, r_r, r_h = inner[:, :u], inner[:, u : 2 * u], inner[:, 2 * u :]
            z = rec(x_z + r_z)
            r = rec(x_r + r_r)
            recurrent_h = r * r_h
        else:
            inner = self._recurrent(h, rk, rmask, 0, 2)
            z = rec(x_z + inner[:, :u])
            r = rec(x_r + inner[:, u:])
            h_h = h if rmask is None else h * rmask[2]
            recurrent_h = jnp.matmul(r * h_h, rk[:, 2 * u :])
        hh = activation(self.act)(x_h + recurrent_h)
        h = z * h + (1 - z) * hh
        return h, h
