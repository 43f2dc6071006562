"""The convolutional LSTM (Keras's ConvLSTM1D/2D/3D): its arguments and shape rules.

A helper of the `recurrent` family: the concrete types live in `recurrent.py` (one per
number of spatial axes); the fields and `infer` they share are here so the family module
stays small (what every recurrent layer shares is in `rnn_base.py`). Input (batch, time, *spatial, channels), channels-last as Keras's default;
each step is an LSTM step whose input projection is a convolution with the layer's
`kernel_size`/`strides`/`padding`/`dilation_rate` and whose recurrent projection is a
`same`, stride-1 convolution of the state with the recurrent kernel (Keras's
`ConvLSTMCell.recurrent_conv`). The state (h and c) is (batch, *output spatial, filters).

`stateful`, `seed` and `data_format` are not fields: Keras's stateful state and
channels-first layout are not supported, and dropout draws from the run's RNG.
Pure Python: no JAX.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.conv_shapes import (
    CONV_AXES,
    kernel_spatial,
    no_strided_dilation,
    window,
)
from modelspec.schema.layers.rnn_base import RecurrentSpec
from modelspec.schema.layers.shape_math import float_out, known_last, need_rank
from modelspec.schema.regularizers import KernelPenalties, RecurrentPenalties
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

IntOrN = PositiveInt | list[PositiveInt]


class ConvLSTMBase(RecurrentSpec, KernelPenalties, RecurrentPenalties):
    """Shared by ConvLSTM1D/2D/3D; `rank` is the number of spatial axes. The class
    variables mean what they mean on every recurrent layer (`RecurrentSpec`)."""

    rank: ClassVar[int] = 0
    gates: ClassVar[int] = 4
    states: ClassVar[tuple[str, ...]] = ("state_h", "state_c")
    keras_scope: ClassVar[str] = "conv_lstm_cell"
    filters: PositiveInt
    """Channels of the output and of the state (h and c)."""
    kernel_size: IntOrN
    """Window of the input and recurrent convolutions: an int (the same on every spatial
    axis) or one per spatial axis."""
    strides: IntOrN = 1
    """Stride of the input convolution (the recurrent one always has stride 1)."""
    padding: Literal["valid", "same"] = "valid"
    """Padding of the input convolution: `valid` (none) or `same` (output size =
    ceil(input/stride)); the recurrent convolution always pads `same`."""
    dilation_rate: IntOrN = 1
    """Dilation of the input convolution; > 1 cannot be combined with strides > 1."""
    activation: ActivationFn = "tanh"
    """Activation of the candidate cell state and of the output."""
    recurrent_activation: ActivationFn = "sigmoid"
    """Activation of the gates."""
    use_bias: bool = True
    """Whether the layer has a bias vector."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the input kernel."""
    recurrent_initializer: Initializer = "orthogonal"
    """Initializer of the recurrent kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""
    unit_forget_bias: bool = True
    """Add 1 to the forget-gate bias at initialization."""
    dropout: UnitInterval = 0.0
    """Fraction of the input elements dropped in training (one mask per gate for all
    timesteps)."""
    recurrent_dropout: UnitInterval = 0.0
    """Fraction of the state elements dropped in training (one mask per gate for all
    timesteps)."""
    return_sequences: bool = False
    """Return the whole output sequence instead of the last output."""
    return_state: bool = False
    """Also return the final states: the layer then has three outputs, referenced as
    `name.0` (the output), `name.1` (h) and `name.2` (c)."""
    go_backwards: bool = False
    """Process the sequence in reverse; the returned sequence stays in processing order,
    i.e. reversed in time, as Keras."""
    unroll: bool = False
    """Unroll the time loop (same numbers; more memory). Needs a known number of
    timesteps; Keras accepts a masked input only when unrolled."""

    @property
    def units(self) -> int:
        """The state's channel count, under the name the shared recurrent machinery
        (the NNX LSTM step, its bias and dropout rules) reads for every RNN."""
        return self.filters

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """As the other RNNs (a (batch, timesteps) mask; the output keeps it only with
        `return_sequences`), but only unrolled: Keras's scanned ConvLSTM fails on a
        mask (its masked step broadcasts a (batch, 1) mask against the spatial state)."""
        if mask is None:
            return None
        if mask.rank != 2:
            raise ShapeError(
                f"{self.type} needs a (batch, timesteps) mask, but its input's mask is {mask}",
                field="inputs",
                received=f"mask={mask}",
            )
        if not self.unroll:
            raise ShapeError(
                f"{self.type} takes a masked input only with `unroll: true` (Keras's "
                "scanned ConvLSTM fails on masks)",
                field="unroll",
                received="unroll=False, with a masked input",
                hint="Set `unroll: true`, or remove the mask before this layer.",
            )
        return mask if self.return_sequences else None

    def state_type(self, x: TensorType) -> TensorType:
        """The type of h and c for the input `x`: (batch, *output spatial, filters),
        after checking the input and the window arguments as Keras does."""
        n = self.rank
        need_rank(x, n + 3, f"(batch, time, {CONV_AXES[n]}, channels)")
        if None in x.shape[2:-1]:
            raise ShapeError(
                f"{self.type} needs known spatial sizes (Keras builds its state from them)",
                field="inputs",
                received=f"input shape {x}",
                hint="Give the input fixed sizes on every axis after time.",
            )
        known_last(x)
        k, s, d = window(self, n)
        no_strided_dilation(self, s, d)
        step = TensorType((x.shape[0], *x.shape[2:]), x.dtype)
        spatial = kernel_spatial(self, step, k, s, d)
        return TensorType((x.shape[0], *spatial, self.filters), float_out(x))

    def infer(self, x: TensorType) -> LayerShape:
        state = self.state_type(x)
        self.need_known_length(x)
        n, c, width = self.rank, x.shape[-1], self.gates * self.filters
        k = window(self, n)[0]
        params = [
            ParamInfo("kernel", (*k, c, width), (None,) * n + ("conv_in", "conv_out")),
            ParamInfo(
                "recurrent_kernel", (*k, self.filters, width), (None,) * n + (None, "conv_out")
            ),
        ]
        if self.use_bias:
            params.append(ParamInfo("bias", (width,), ("conv_out",)))
        return self.recurrent_shape(x, state, params)
