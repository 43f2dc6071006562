"""Recurrent layers over (batch, timesteps, features)."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.common import Activation as ActivationFn
from modelspec.schema.common import Initializer, LayerBase


class _RNN(LayerBase):
    units: PositiveInt
    """Dimensionality of the output (and hidden state)."""
    activation: ActivationFn = "tanh"
    """Activation of the candidate state."""
    recurrent_activation: ActivationFn = "sigmoid"
    """Activation of the gates."""
    use_bias: bool = True
    """Whether the layer has bias vectors."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the input kernel."""
    recurrent_initializer: Initializer = "orthogonal"
    """Initializer of the recurrent kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""
    dropout: UnitInterval = 0.0
    """Fraction of the inputs dropped in training (one mask for all timesteps)."""
    recurrent_dropout: UnitInterval = 0.0
    """Fraction of the recurrent state dropped in training (one mask for all timesteps)."""
    return_sequences: bool = False
    """Return the whole output sequence instead of the last output."""
    go_backwards: bool = False
    """Process the sequence in reverse (the returned sequence is reversed too, as Keras)."""
    unroll: bool = False
    """Unroll the time loop (faster for short sequences, more memory)."""


class LSTM(_RNN):
    """Long short-term memory (Keras gate order i, f, c, o)."""

    type: Literal["LSTM"]
    unit_forget_bias: bool = True
    """Add 1 to the forget-gate bias at initialization."""


class GRU(_RNN):
    """Gated recurrent unit (Keras gate order z, r, h)."""

    type: Literal["GRU"]
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 / cuDNN convention)."""
