"""The convolutions of Keras's ConvLSTMCell (keras/src/layers/rnn/conv_lstm.py), used by
the NNX `ConvLSTM` layer in `recurrent.py`, which otherwise runs the LSTM step and the
shared scan of the other recurrent layers.

- input projection: `ops.conv(x, kernel, strides, padding, dilation_rate)` of each step,
  one `lax.conv_general_dilated` with the padding string, as Keras's JAX backend (and
  our Conv layers) call it;
- recurrent projection: the state convolved with the recurrent kernel, always `same`
  and stride 1, without dilation (`ConvLSTMCell.recurrent_conv`);
- Keras convolves each gate's slice of a kernel separately; the gates are independent
  output channels, so one convolution with the whole kernel gives the same numbers,
  except under dropout, where every gate sees its own masked copy of the input (or
  state) and is convolved on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

_DIMENSIONS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


@dataclass(frozen=True)
class ConvCell:
    """The window arguments of one ConvLSTM layer (hashable: a static attribute of the
    NNX module) and its convolutions over channels-last tensors."""

    rank: int
    filters: int
    strides: tuple[int, ...]
    padding: str
    dilation: tuple[int, ...]

    def _conv(self, x, kernel, strides, padding: str, dilation) -> jax.Array:
        return jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=strides,
            padding=padding,
            rhs_dilation=dilation,
            dimension_numbers=_DIMENSIONS[self.rank],
        )

    def _gate(self, kernel, g: int) -> jax.Array:
        """Gate `g`'s slice of a kernel's output channels (Keras's `ops.split`)."""
        f = self.filters
        return kernel[..., g * f : (g + 1) * f]

    def input_step(self, x_t: jax.Array, kernel: jax.Array) -> jax.Array:
        """(B, *spatial, C) -> (B, *spatial', G*filters): one step's input convolution."""
        return self._conv(x_t, kernel, self.strides, self.padding.upper(), self.dilation)

    def input_sequence(self, x: jax.Array, kernel: jax.Array, masks) -> jax.Array:
        """(B, T, *spatial, C) -> (B, T, *spatial', G*filters), all steps at once; with
        dropout `masks` (G, B, *spatial, C) each gate convolves its own masked input."""
        batch, steps = x.shape[:2]
        if masks is None:
            y = self.input_step(x.reshape(batch * steps, *x.shape[2:]), kernel)
        else:
            parts = []
            for g in range(masks.shape[0]):
                xg = (x * masks[g][:, None]).reshape(batch * steps, *x.shape[2:])
                parts.append(self.input_step(xg, self._gate(kernel, g)))
            y = jnp.concatenate(parts, axis=-1)
        return y.reshape(batch, steps, *y.shape[1:])

    def recurrent(self, h: jax.Array, rk: jax.Array, rmask, lo: int, hi: int) -> jax.Array:
        """Gates [lo, hi) of the state's `same`, stride-1 convolution; with recurrent
        dropout masks (G, B, *spatial', filters) each gate sees its own masked state."""
        ones = (1,) * self.rank
        if rmask is None:
            f = self.filters
            return self._conv(h, rk[..., lo * f : hi * f], ones, "SAME", ones)
        parts = [
            self._conv(h * rmask[g], self._gate(rk, g), ones, "SAME", ones) for g in range(lo, hi)
        ]
        return jnp.concatenate(parts, axis=-1)
