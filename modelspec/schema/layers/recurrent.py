"""Recurrent layers over (batch, timesteps, features): LSTM, GRU."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import float_out, known_last, need_rank
from modelspec.schema.tensors import LayerShape, ParamInfo, TensorType

_NNX = "modelspec.compiler.layers.recurrent:"


class _RNN(LayerSpec):
    """Shared by LSTM and GRU; `gates` is the number of gate blocks in each kernel."""

    gates: ClassVar[int] = 0
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout", "recurrent_dropout")
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

    def _bias_shape(self, width: int) -> tuple[int, ...]:
        return (width,)

    def infer(self, x: TensorType) -> LayerShape:
        need_rank(x, 3, "(batch, timesteps, features)")
        d, u = known_last(x), self.units
        width = self.gates * u
        params = [
            ParamInfo("kernel", (d, width), ("embed", "mlp")),
            ParamInfo("recurrent_kernel", (u, width), (None, "mlp")),
        ]
        if self.use_bias:
            shape = self._bias_shape(width)
            params.append(ParamInfo("bias", shape, (None,) * (len(shape) - 1) + ("mlp",)))
        shape = (x.shape[0], x.shape[1], u) if self.return_sequences else (x.shape[0], u)
        return LayerShape(TensorType(shape, float_out(x)), tuple(params))


class LSTM(_RNN):
    """Long short-term memory (Keras gate order i, f, c, o)."""

    nnx: ClassVar[str] = _NNX + "LSTM"
    gates: ClassVar[int] = 4
    type: Literal["LSTM"]
    unit_forget_bias: bool = True
    """Add 1 to the forget-gate bias at initialization."""


class GRU(_RNN):
    """Gated recurrent unit (Keras gate order z, r, h)."""

    nnx: ClassVar[str] = _NNX + "GRU"
    gates: ClassVar[int] = 3
    type: Literal["GRU"]
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 / cuDNN convention)."""

    def _bias_shape(self, width: int) -> tuple[int, ...]:
        # reset_after keeps separate input and recurrent biases, stacked (Keras layout).
        return (2, width) if self.reset_after else (width,)
