"""What every recurrent layer spec shares (LSTM, GRU and SimpleRNN in `recurrent.py`,
ConvLSTM1D/2D/3D through `conv_rnn.py`): Keras's RNN class variables, the outputs
`return_sequences` and `return_state` add, and the refusal to unroll an unknown number
of timesteps.

A helper of the `recurrent` family (not a family: it defines no layer type). The fields
stay with each layer's own class so that their order and documentation are the layer's.
Pure Python: no JAX.
"""

from __future__ import annotations

from typing import ClassVar

from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.flops_math import kernel_macs, param_size, rows, times, total
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError, TensorType


class RecurrentSpec(LayerSpec):
    """Base of Keras's RNN subclasses. `gates` is the number of gate blocks in each
    kernel, `states` labels the final states `return_state` adds (Keras's order), and
    `keras_scope` is the cell sublayer Keras keeps the weights in (its weight paths are
    `<layer>/<cell>/kernel`), which wrappers put into their weight paths. Subclasses
    declare the fields `return_sequences`, `return_state` and `unroll`."""

    gates: ClassVar[int] = 1
    states: ClassVar[tuple[str, ...]] = ("state_h",)
    keras_scope: ClassVar[str] = ""
    masking: ClassVar[str] = "keep"
    mask_arg: ClassVar[bool] = True
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout", "recurrent_dropout")

    @property
    def output_labels(self) -> tuple[str, ...]:
        return ("output", *self.states) if self.return_state else ("output",)

    def need_known_length(self, x: TensorType) -> None:
        """Unrolling needs the number of timesteps (Keras unrolls a Python loop)."""
        if self.unroll and x.shape[1] is None:
            raise ShapeError(
                f"{self.type} cannot unroll a sequence of unknown length",
                field="unroll",
                received=f"unroll=True, input shape {x}",
                hint="Give the input a fixed number of timesteps, or set `unroll: false`.",
            )

    def recurrent_shape(
        self, x: TensorType, state: TensorType, params: list[ParamInfo]
    ) -> LayerShape:
        """The layer's shape from the type of one final state (batch, *features): the
        last output (the state's type) or, with `return_sequences`, one per timestep of
        `x`; with `return_state`, the final states as extra outputs."""
        if self.return_sequences:
            out = TensorType((x.shape[0], x.shape[1], *state.shape[1:]), state.dtype)
        else:
            out = state
        states = (state,) * len(self.states) if self.return_state else ()
        return LayerShape(out, tuple(params), states)

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """Per timestep and state position (1 for LSTM/GRU/SimpleRNN, every output pixel
        for ConvLSTM): 2 per input and recurrent kernel weight, 1 per bias element and
        1 per gate element (its activation), times the timesteps. The few element-wise
        state updates (c = f·c + i·g, ...) are left out."""
        out = shape.output
        positions = rows(TensorType(out.shape[1:] if self.return_sequences else out.shape))
        per_step = total(
            [
                times(kernel_macs(shape, positions), 2),
                times(param_size(shape, "bias"), positions),
                times(self.gates * self.units, positions),
            ]
        )
        return times(per_step, x.shape[1])
