"""Recurrent layers over (batch, timesteps, features): LSTM, GRU, SimpleRNN; over
(batch, timesteps, *spatial, channels): ConvLSTM1D/2D/3D (fields and shapes in
`conv_rnn.py`); and the wrappers Bidirectional and TimeDistributed (nested layer specs,
`nesting.py`).

With `return_state: true` an RNN is a multi-output layer (Keras returns a list): its
tensors are referenced as `name.0` (the output), `name.1`, ... (the final states, in
Keras's order: h, c for LSTM and ConvLSTM; h for GRU and SimpleRNN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.conv_rnn import ConvLSTMBase
from modelspec.schema.layers.flops_math import per_example, times, total
from modelspec.schema.layers.nesting import (
    check_nested,
    nested_infer,
    nested_name,
    prefixed,
    weight_prefix,
)
from modelspec.schema.layers.rnn_base import RecurrentSpec
from modelspec.schema.layers.shape_math import float_out, known_last, need_rank
from modelspec.schema.regularizers import KernelPenalties, RecurrentPenalties
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType

if TYPE_CHECKING:  # the union of every layer type, defined after the families
    from modelspec.schema.layers import Layer

_NNX = "modelspec.compiler.layers.recurrent:"
_ONNX = "modelspec.compiler.layers.onnx.recurrent:"


class _RNN(RecurrentSpec, KernelPenalties, RecurrentPenalties):
    """Shared by LSTM, GRU and SimpleRNN (the class variables: `RecurrentSpec`)."""

    units: PositiveInt
    """Dimensionality of the output (and hidden state)."""
    activation: ActivationFn = "tanh"
    """Activation of the candidate state."""
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
    return_state: bool = False
    """Also return the final states: the layer then has several outputs, referenced as
    `name.0` (the output), `name.1`, ... (the states: h, c for LSTM; h for GRU and
    SimpleRNN)."""
    go_backwards: bool = False
    """Process the sequence in reverse; the returned sequence stays in processing order,
    i.e. reversed in time, as Keras."""
    unroll: bool = False
    """Unroll the time loop (same numbers; faster for short sequences, more memory).
    Needs a known number of timesteps."""

    def _bias_shape(self, width: int) -> tuple[int, ...]:
        return (width,)

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras: masked steps keep the state and repeat the previous output; the output
        keeps the (batch, steps) mask only with `return_sequences` (states get none)."""
        if mask is not None and mask.rank != 2:
            raise ShapeError(
                f"{self.type} needs a (batch, timesteps) mask, but its input's mask is {mask}",
                field="inputs",
                received=f"mask={mask}",
            )
        return mask if self.return_sequences else None

    def infer(self, x: TensorType) -> LayerShape:
        need_rank(x, 3, "(batch, timesteps, features)")
        self.need_known_length(x)
        d, u = known_last(x), self.units
        width = self.gates * u
        params = [
            ParamInfo("kernel", (d, width), ("embed", "mlp")),
            ParamInfo("recurrent_kernel", (u, width), (None, "mlp")),
        ]
        if self.use_bias:
            shape = self._bias_shape(width)
            params.append(ParamInfo("bias", shape, (None,) * (len(shape) - 1) + ("mlp",)))
        return self.recurrent_shape(x, TensorType((x.shape[0], u), float_out(x)), params)


class _GatedRNN(_RNN):
    """LSTM and GRU: gates with their own activation."""

    recurrent_activation: ActivationFn = "sigmoid"
    """Activation of the gates."""


class SimpleRNN(_RNN):
    """Fully-connected RNN: h = activation(x @ kernel + h @ recurrent_kernel + bias)."""

    nnx: ClassVar[str] = _NNX + "SimpleRNN"
    onnx: ClassVar[str] = _ONNX + "lower_rnn"
    keras_scope: ClassVar[str] = "simple_rnn_cell"
    type: Literal["SimpleRNN"]


class LSTM(_GatedRNN):
    """Long short-term memory (Keras gate order i, f, c, o)."""

    nnx: ClassVar[str] = _NNX + "LSTM"
    onnx: ClassVar[str] = _ONNX + "lower_rnn"
    gates: ClassVar[int] = 4
    states: ClassVar[tuple[str, ...]] = ("state_h", "state_c")
    keras_scope: ClassVar[str] = "lstm_cell"
    type: Literal["LSTM"]
    unit_forget_bias: bool = True
    """Add 1 to the forget-gate bias at initialization."""


class GRU(_GatedRNN):
    """Gated recurrent unit (Keras gate order z, r, h)."""

    nnx: ClassVar[str] = _NNX + "GRU"
    onnx: ClassVar[str] = _ONNX + "lower_rnn"
    gates: ClassVar[int] = 3
    keras_scope: ClassVar[str] = "gru_cell"
    type: Literal["GRU"]
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 / cuDNN convention)."""

    def _bias_shape(self, width: int) -> tuple[int, ...]:
        # reset_after keeps separate input and recurrent biases, stacked (Keras layout).
        return (2, width) if self.reset_after else (width,)


class ConvLSTM1D(ConvLSTMBase):
    """LSTM whose input and recurrent projections are convolutions, over (batch, time,
    steps, channels) (fields and shape rules in `conv_rnn.py`)."""

    nnx: ClassVar[str] = _NNX + "ConvLSTM"
    onnx: ClassVar[str] = _ONNX + "lower_conv_lstm"
    rank: ClassVar[int] = 1
    type: Literal["ConvLSTM1D"]


class ConvLSTM2D(ConvLSTMBase):
    """LSTM whose input and recurrent projections are convolutions, over (batch, time,
    height, width, channels) (fields and shape rules in `conv_rnn.py`)."""

    nnx: ClassVar[str] = _NNX + "ConvLSTM"
    onnx: ClassVar[str] = _ONNX + "lower_conv_lstm"
    rank: ClassVar[int] = 2
    type: Literal["ConvLSTM2D"]


class ConvLSTM3D(ConvLSTMBase):
    """LSTM whose input and recurrent projections are convolutions, over (batch, time,
    depth, height, width, channels) (fields and shape rules in `conv_rnn.py`)."""

    nnx: ClassVar[str] = _NNX + "ConvLSTM"
    onnx: ClassVar[str] = _ONNX + "lower_conv_lstm"
    rank: ClassVar[int] = 3
    type: Literal["ConvLSTM3D"]


def _rnn_or_refuse(layer: LayerSpec, field: str) -> RecurrentSpec:
    """The nested layer of a Bidirectional, which Keras requires to be an RNN (one of
    its RNN subclasses: a `RecurrentSpec`)."""
    if not isinstance(layer, RecurrentSpec):
        raise ShapeError(
            "Bidirectional wraps a recurrent layer (LSTM, GRU, SimpleRNN, ConvLSTM1D/2D/3D)",
            field=f"{field}.type",
            received=f"{field}.type={layer.type}",
            hint="Wrap a recurrent layer (TimeDistributed applies other layers to every timestep).",
        )
    check_nested(layer, field)
    return layer


class Bidirectional(LayerSpec):
    """Runs a recurrent layer forward and a copy of it (or `backward_layer`) backward over
    the sequence, and merges the two outputs (Keras `Bidirectional`). Weights live under
    `forward_<name>/` and `backward_<name>/` (`name`: the nested layer's, or `lstm`...)."""

    nnx: ClassVar[str] = _NNX + "Bidirectional"
    onnx: ClassVar[str] = _ONNX + "lower_bidirectional"
    nested_fields: ClassVar[tuple[str, ...]] = ("layer", "backward_layer")
    masking: ClassVar[str] = "keep"
    mask_arg: ClassVar[bool] = True
    type: Literal["Bidirectional"]
    layer: Layer
    """The recurrent layer run forward, as a nested spec (`{type: LSTM, units: 8}`); its
    copy with `go_backwards: true` runs backward unless `backward_layer` is given."""
    merge_mode: Literal["sum", "mul", "concat", "ave"] | None = "concat"
    """How the forward and backward outputs are combined; null returns both, as two
    outputs (`name.0` forward, `name.1` backward)."""
    backward_layer: Layer | None = None
    """The recurrent layer run backward (`go_backwards: true`, the same
    `return_sequences` and `return_state` as `layer`). Default: a copy of `layer`."""

    def infer_mask(
        self, x: TensorType, mask: TensorType | None
    ) -> TensorType | tuple[TensorType | None, ...] | None:
        """Keras: both directions skip the masked steps (masked steps of returned
        sequences are zeros); the output keeps the mask only with `return_sequences`,
        and with `merge_mode: null` both outputs carry it (the states none)."""
        out = self.layer.infer_mask(x, mask) if isinstance(self.layer, RecurrentSpec) else None
        return (out, out) if self.merge_mode is None else out

    @property
    def backward_spec(self) -> LayerSpec:
        """The layer run backward: `backward_layer`, or `layer` with go_backwards."""
        if self.backward_layer is not None:
            return self.backward_layer
        if not isinstance(self.layer, RecurrentSpec):  # refused by `infer`; nothing to copy
            return self.layer
        return self.layer.model_copy(update={"go_backwards": True})

    def wrapped_names(self) -> tuple[str, str]:
        """Keras's names of the forward and backward layers (their weight scopes)."""
        base = nested_name(self.layer)
        forward = "forward_" + base.removeprefix("forward_")
        if self.backward_layer is None:
            return forward, "backward_" + base.removeprefix("backward_")
        return forward, nested_name(self.backward_layer)

    @property
    def output_labels(self) -> tuple[str, ...]:
        out = ("output",) if self.merge_mode else ("forward_output", "backward_output")
        if not getattr(self.layer, "return_state", False):
            return out
        states = [f"forward_{s}" for s in getattr(type(self.layer), "states", ())]
        states += [f"backward_{s}" for s in getattr(type(self.backward_spec), "states", ())]
        return (*out, *states)

    @property
    def stochastic(self) -> bool:
        return self.layer.stochastic or self.backward_spec.stochastic

    def _check_pair(self, forward: RecurrentSpec, backward: RecurrentSpec) -> None:
        """Keras's `_verify_layer_config`: opposite directions, same outputs."""
        if self.backward_layer is None and forward.go_backwards:
            raise ShapeError(
                "without `backward_layer`, `layer` runs forward and its copy backward",
                field="layer.go_backwards",
                received="layer.go_backwards=True",
                hint="Remove `go_backwards` from `layer`.",
            )
        if forward.go_backwards == backward.go_backwards:
            raise ShapeError(
                "`layer` and `backward_layer` must run in opposite directions",
                field="backward_layer.go_backwards",
                received=f"layer.go_backwards={forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}",
                hint="Set `go_backwards: true` on `backward_layer`.",
            )
        for attr in ("return_sequences", "return_state"):
            if getattr(forward, attr) != getattr(backward, attr):
                raise ShapeError(
                    f"`layer` and `backward_layer` must have the same `{attr}`",
                    field=f"backward_layer.{attr}",
                    received=f"layer.{attr}={getattr(forward, attr)}, "
                    f"backward_layer.{attr}={getattr(backward, attr)}",
                )

    def infer(self, x: TensorType) -> LayerShape:
        forward = _rnn_or_refuse(self.layer, "layer")
        bfield = "layer" if self.backward_layer is None else "backward_layer"
        backward = _rnn_or_refuse(self.backward_spec, bfield)
        self._check_pair(forward, backward)
        fname, bname = self.wrapped_names()
        if fname == bname:
            raise ShapeError(
                "the forward and backward layers need different names (their weight scopes)",
                field="backward_layer.name",
                received=f"backward_layer.name={bname!r}",
            )
        f, b = nested_infer(forward, x, "layer"), nested_infer(backward, x, bfield)
        yf, yb = f.output, b.output
        if self.merge_mode == "concat":
            outputs: tuple[TensorType, ...] = (
                TensorType((*yf.shape[:-1], yf.shape[-1] + yb.shape[-1]), yf.dtype),
            )
        elif self.merge_mode is None:
            outputs = (yf, yb)
        elif yf.shape != yb.shape:
            raise ShapeError(
                f"merge_mode {self.merge_mode} needs forward and backward outputs of one shape",
                field="merge_mode",
                received=f"forward {yf}, backward {yb}",
                hint="Give both layers the same `units`, or use `merge_mode: concat`.",
            )
        else:
            outputs = (yf,)
        params = prefixed(f, weight_prefix(forward, fname), forward.trainable) + prefixed(
            b, weight_prefix(backward, bname), backward.trainable
        )
        return LayerShape(outputs[0], params, outputs[1:] + f.extra_outputs + b.extra_outputs)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """Both directions, plus one per output element to merge them (sum/mul/ave)."""
        runs = [spec.flops(x, spec.infer(x)) for spec in (self.layer, self.backward_spec)]
        merge = per_example(shape.output) if self.merge_mode in ("sum", "mul", "ave") else 0
        return total([*runs, merge])


class TimeDistributed(LayerSpec):
    """Applies one layer (the same weights) to every timestep: input (batch, timesteps,
    ...) -> the layer on each (batch, ...) slice (Keras `TimeDistributed`). Weights live
    under `<name>/` (the nested layer's name, or `dense`...)."""

    nnx: ClassVar[str] = _NNX + "TimeDistributed"
    onnx: ClassVar[str] = _ONNX + "lower_time_distributed"
    nested_fields: ClassVar[tuple[str, ...]] = ("layer",)
    masking: ClassVar[str] = "keep"
    mask_arg: ClassVar[bool] = True
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["TimeDistributed"]
    layer: Layer
    """The layer applied to each timestep, as a nested spec (`{type: Dense, units: 8}`):
    a one-input, one-output layer without batch statistics."""

    @property
    def stochastic(self) -> bool:
        return self.layer.stochastic

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras: each timestep's slice of the mask (batch, ...) goes to the wrapped
        layer when its call takes a mask (an LSTM over the words of each sentence needs
        a (batch, sentences, words) mask); the output keeps the input's mask unchanged
        (Keras's default `compute_mask`, whatever the wrapped layer computes)."""
        if mask is None:
            return None
        if mask.rank < 2 or any(
            None not in (m, d) and m != d for m, d in zip(mask.shape[:2], x.shape[:2], strict=True)
        ):
            raise ShapeError(
                f"TimeDistributed needs a mask of rank 2 or more whose first two axes "
                f"(batch, timesteps) match its input {x}",
                field="inputs",
                received=f"mask={mask}",
            )
        step = TensorType((mask.shape[0], *mask.shape[2:]), mask.dtype)
        child = TensorType((x.shape[0], *x.shape[2:]), x.dtype)
        try:
            self.layer.infer_mask(child, step)
        except ShapeError as exc:
            raise ShapeError(
                f"each timestep of the input {x} goes to the wrapped {self.layer.type} "
                f"as {child} with the mask {step}: {exc.message}",
                field="inputs",
                received=f"mask={mask}",
                hint=exc.hint,
            ) from None
        return mask

    def infer(self, x: TensorType) -> LayerShape:
        inner = self.layer
        check_nested(inner, "layer")
        if x.rank < 3:
            raise ShapeError(
                "TimeDistributed needs an input of rank 3 or more (batch, timesteps, ...)",
                field="inputs",
                received=f"input shape {x}",
            )
        cls = type(inner)
        if cls.call.kind != "single" or len(inner.output_labels) > 1:
            raise ShapeError(
                "TimeDistributed wraps a layer with one input and one output",
                field="layer.type",
                received=f"layer.type={inner.type}",
            )
        if cls.train_deterministic:
            raise ShapeError(
                "TimeDistributed cannot wrap a layer with batch statistics (Keras computes "
                "them for each timestep separately)",
                field="layer.type",
                received=f"layer.type={inner.type}",
                hint="Apply the layer to the whole sequence instead.",
            )
        child = nested_infer(inner, TensorType((x.shape[0], *x.shape[2:]), x.dtype), "layer")
        y = child.output
        out = TensorType((y.shape[0], x.shape[1], *y.shape[1:]), y.dtype)
        params = prefixed(child, weight_prefix(inner, nested_name(inner)), inner.trainable)
        return LayerShape(out, params)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """The wrapped layer's FLOPs on one timestep, times the timesteps."""
        step = TensorType((x.shape[0], *x.shape[2:]), x.dtype)
        return times(self.layer.flops(step, self.layer.infer(step)), x.shape[1])
