"""Recurrent layers: LSTM, GRU, SimpleRNN, ConvLSTM1D/2D/3D (the LSTM step with the
convolutions of `conv_rnn_cells.py`), numerically equal to Keras 3's generic (CPU)
path, and the wrappers Bidirectional and TimeDistributed (helpers in `rnn_wrap.py`).

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
- `return_state` returns (output, *final states): h, c for LSTM, h for GRU/SimpleRNN;
- every layer type runs its time loop through the one scan in `_Recurrent.__call__`;
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
from modelspec.compiler.layers.conv_rnn_cells import ConvCell
from modelspec.compiler.layers.initializers import initialize
from modelspec.compiler.layers.rnn_wrap import build_nested, merge, nested
from modelspec.schema.layers.conv_shapes import window
from modelspec.schema.layers.nesting import nested_name, weight_prefix
from modelspec.schema.tensors import TensorType


def _masks(rngs, rate: float, count: int, shape: tuple[int, ...], dtype) -> jax.Array | None:
    """`count` dropout masks (scaled by 1/(1-rate), as Keras's `random.dropout(ones)`),
    stacked on a leading axis; None when no dropout applies."""
    if not 0.0 < rate < 1.0:
        return None
    keep = jax.random.bernoulli(rngs.dropout(), 1.0 - rate, (count, *shape))
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def _skip_masked(carry, new, h, m_t, zero_output: bool):
    """Keras's masked time step (backend/jax/rnn.py): where `m_t` is False the state
    stays as it was and the output repeats the previous one (the state's first part,
    the hidden state) — or is zero when `zero_output` (Bidirectional's sequences)."""
    prev = carry[0] if isinstance(carry, tuple) else carry
    h = jnp.where(_per_sample(m_t, h), h, jnp.zeros_like(h) if zero_output else prev)
    return jax.tree.map(lambda old, n: jnp.where(_per_sample(m_t, n), n, old), carry, new), h


def _per_sample(m: jax.Array, like: jax.Array) -> jax.Array:
    """A (batch, 1) step mask shaped to broadcast against `like` (batch, ...): a
    ConvLSTM's state has spatial axes too."""
    return m.reshape(m.shape[0], *(1,) * (like.ndim - 1))


class _Recurrent(Layer):
    """Shared machinery: variables, masks, input projection, scan and output selection.
    Subclasses set GATES and implement `_step(carry, xz_t, rk, rbias, rmask) -> (carry, h)`
    (recurrent kernel and recurrent bias passed in as arrays) and
    `_zero_carry(batch, dtype)`."""

    GATES = 0
    zero_output_for_mask = False
    """Masked steps output zeros instead of repeating the last output; Keras's
    Bidirectional sets it on its layers when they return sequences."""

    def __init__(self, spec, x, shape, key):
        self.units = spec.units
        self.act = spec.activation
        self.rec_act = getattr(spec, "recurrent_activation", None)  # SimpleRNN: none
        self.use_bias = spec.use_bias
        self.dropout = float(spec.dropout)
        self.recurrent_dropout = float(spec.recurrent_dropout)
        self.return_sequences = spec.return_sequences
        self.return_state = spec.return_state
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

    def _dropout_masks(self, x, rngs, dtype):
        """(input masks, recurrent masks) of a training call, each (count, batch, ...)
        or None."""
        batch = x.shape[0]
        per_gate = self.recurrent_dropout > 0.0
        count = self.GATES if per_gate else 1
        imask = _masks(rngs, self.dropout, count, (batch, x.shape[-1]), dtype)
        rmask = _masks(rngs, self.recurrent_dropout, self.GATES, (batch, self.units), dtype)
        return imask, rmask

    def _project(self, x_t, kernel):
        """One timestep's input projection, before the bias: (B, d) -> (B, G*u)."""
        return jnp.matmul(x_t, kernel)

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

    def __call__(self, x, *, training=False, rngs=None, mask=None):
        dtype = jnp.promote_types(x.dtype, self.kernel.dtype)  # mixed policy: bf16
        x = x.astype(dtype)
        batch = x.shape[0]
        imask = rmask = None
        if training:
            imask, rmask = self._dropout_masks(x, rngs, dtype)
        # Variables are read once, outside the scan body: the body only sees arrays.
        rk, (ibias, rbias) = self.recurrent_kernel[...], self._bias_parts()
        kernel = self.kernel[...]
        if imask is None:
            # Project each step inside the scan: on CPU this beats one big hoisted
            # (B, T, G*u) matmul plus its time-major transpose, forward and backward.
            xs = jnp.swapaxes(x, 0, 1)

            def project(x_t):
                z = self._project(x_t, kernel)
                return z if ibias is None else z + ibias
        else:
            xs = jnp.swapaxes(self._input_projection(x, imask), 0, 1)

            def project(xz_t):
                return xz_t

        # Keras mask (batch, steps) -> (steps, batch, 1), in processing order.
        ms = None if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)[..., None]
        if self.go_backwards:
            xs = jnp.flip(xs, axis=0)
            ms = None if ms is None else jnp.flip(ms, axis=0)
        # Keras's unrolled loop ignores zero_output_for_mask (it repeats the last output).
        zero_masked = self.zero_output_for_mask and not self.unroll

        def step(carry, inputs):
            x_t, m_t = inputs
            new, h = self._step(carry, project(x_t), rk, rbias, rmask)
            if m_t is not None:
                new, h = _skip_masked(carry, new, h, m_t, zero_masked)
            # Only emit per-step outputs when they are returned: otherwise the scan
            # would write (and the backward pass re-read) the whole sequence for nothing.
            return new, (h if self.return_sequences else None)

        carry, outputs = jax.lax.scan(
            step, self._zero_carry(batch, dtype), (xs, ms), unroll=True if self.unroll else 1
        )
        states = carry if isinstance(carry, tuple) else (carry,)  # Keras's order: h (, c)
        if self.return_sequences:
            output = jnp.swapaxes(outputs, 0, 1)
        elif zero_masked and ms is not None:
            output = jnp.where(_per_sample(ms[-1], states[0]), states[0], 0.0)
        else:
            output = states[0]
        return (output, *states) if self.return_state else output


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


class SimpleRNN(_Recurrent):
    """Keras SimpleRNN: h = act(x @ kernel + bias + h @ recurrent_kernel)."""

    GATES = 1

    def _zero_carry(self, batch, dtype):
        return jnp.zeros((batch, self.units), dtype)

    def _step(self, h, xz_t, rk, rbias, rmask):
        h = activation(self.act)(xz_t + self._recurrent(h, rk, rmask, 0, 1))
        return h, h


class ConvLSTM(LSTM):
    """Keras ConvLSTM1D/2D/3D: the LSTM step (gates i, f, c, o, `unit_forget_bias`) with
    convolutions for both projections (`conv_rnn_cells.py`) and a state of shape
    (batch, *output spatial, filters). Keras's ConvLSTMCell always draws four dropout
    masks (one per gate) of the whole step input (or state), not one per channel."""

    def __init__(self, spec, x, shape, key):
        n = spec.rank
        _, strides, dilation = window(spec, n)
        self.conv = ConvCell(n, spec.filters, strides, spec.padding, dilation)
        self.state_shape = spec.state_type(x).shape[1:]
        super().__init__(spec, x, shape, key)

    def _zero_carry(self, batch, dtype):
        zeros = jnp.zeros((batch, *self.state_shape), dtype)
        return zeros, zeros

    def _dropout_masks(self, x, rngs, dtype):
        batch = x.shape[0]
        imask = _masks(rngs, self.dropout, self.GATES, (batch, *x.shape[2:]), dtype)
        rshape = (batch, *self.state_shape)
        return imask, _masks(rngs, self.recurrent_dropout, self.GATES, rshape, dtype)

    def _project(self, x_t, kernel):
        return self.conv.input_step(x_t, kernel)

    def _input_projection(self, x, masks):
        y = self.conv.input_sequence(x, self.kernel[...], masks)
        bias, _ = self._bias_parts()
        return y if bias is None else y + bias

    def _recurrent(self, h, rk, rmask, lo: int, hi: int):
        return self.conv.recurrent(h, rk, rmask, lo, hi)


class Bidirectional(Layer):
    """Keras Bidirectional: the forward layer and the backward one (go_backwards) on the
    same input; a returned backward sequence is flipped back to time order before the
    merge; with return_state: (merged output(s), forward states, backward states)."""

    def __init__(self, spec, x, shape, key):
        forward, backward = spec.layer, spec.backward_spec
        fname, bname = spec.wrapped_names()
        self.paths = (weight_prefix(forward, fname), weight_prefix(backward, bname))
        self.merge_mode = spec.merge_mode
        self.return_sequences = forward.return_sequences
        self.return_state = forward.return_state
        fkey, bkey = jax.random.split(key)
        for sub, prefix, k in zip((forward, backward), self.paths, (fkey, bkey), strict=True):
            build_nested(self, sub, x, shape, prefix, k)
            # Keras forces zero outputs at masked steps of returned sequences.
            nested(self, prefix).zero_output_for_mask = sub.return_sequences

    def __call__(self, x, *, training=False, rngs=None, mask=None):
        kw = {"training": training, "rngs": rngs} | ({} if mask is None else {"mask": mask})
        y, y_rev = (nested(self, p)(x, **kw) for p in self.paths)
        states = ()
        if self.return_state:
            states = (*y[1:], *y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = jnp.flip(y_rev, axis=1)
        out = (*merge(self.merge_mode, y, y_rev), *states)
        return out if len(out) > 1 else out[0]

    def compute_mask(self, inputs, masks):
        """Keras: with `merge_mode: null` both outputs keep the input's mask."""
        return (masks, masks) if self.merge_mode is None else masks


class TimeDistributed(Layer):
    """Keras TimeDistributed: the nested layer on (batch * timesteps, ...) — every
    timestep of every sample independently, with one set of weights — reshaped back to
    (batch, timesteps, ...)."""

    def __init__(self, spec, x, shape, key):
        inner = spec.layer
        self.path = weight_prefix(inner, nested_name(inner))
        child = TensorType((x.shape[0], *x.shape[2:]), x.dtype)
        build_nested(self, inner, child, shape, self.path, key)
        self.inner_takes_mask = type(inner).mask_arg  # Keras: `_call_has_mask_arg`

    def __call__(self, x, *, training=False, rngs=None, mask=None):
        batch, steps = x.shape[:2]
        kw = {"training": training, "rngs": rngs}
        if mask is not None and self.inner_takes_mask:  # each timestep's slice of it
            kw["mask"] = mask.reshape(batch * steps, *mask.shape[2:])
        y = nested(self, self.path)(x.reshape(batch * steps, *x.shape[2:]), **kw)
        return y.reshape(batch, steps, *y.shape[1:])
