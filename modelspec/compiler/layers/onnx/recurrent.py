"""ONNX lowerings of the recurrent layers (`schema/layers/recurrent.py`): SimpleRNN,
GRU (reset_after true or false), LSTM, ConvLSTM1D/2D/3D, and the wrappers Bidirectional
and TimeDistributed.

Why a Scan rather than ONNX's RNN/GRU/LSTM operators: those fix their own gate order,
bias layout and activation list, while Keras's cells take any activation
(`recurrent_activation: relu`, gelu, ...). A Scan whose body is the Keras step, built
with the same activation lowerings as Dense's, is Keras's loop exactly
(`compiler/layers/recurrent.py`): the input projection (and input bias) for all steps
at once, then per step `h @ recurrent_kernel` and the gates (i, f, c, o for LSTM;
z, r, h for GRU, the reset gate after or before the recurrent matmul). `go_backwards`
scans the input from its end and emits the sequence in processing order, as Keras
does. Dropout is the identity at inference; `unroll` changes nothing in the numbers.
Keras masks never reach these lowerings: the exporter refuses masked inputs of layers
that read masks. Conventions: see `graph.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import TensorProto, helper

from modelspec.compiler.layers.onnx.activations import activation
from modelspec.compiler.layers.onnx.conv import conv
from modelspec.compiler.layers.onnx.graph import OnnxGraph, Unsupported
from modelspec.schema.layers.conv_shapes import window
from modelspec.schema.layers.nesting import nested_name, weight_prefix
from modelspec.schema.tensors import TensorType
from modelspec.schema.vocabulary import load_reference

Step = Callable[[OnnxGraph, list[str], str], tuple[list[str], str]]
"""(body graph, carried states, projected input step) -> (new states, step output)."""


def _float32(g: OnnxGraph, x: str, t: TensorType) -> str:
    """Keras computes in promote(input, float32): float32 for every input but float64,
    which is refused (the weights are exported in float32)."""
    if t.dtype == "float64":
        raise Unsupported("recurrent layers on float64 inputs are not exported to ONNX", "inputs")
    return g.cast_if(x, t.dtype, "float32")


def _split(g: OnnxGraph, z: str, units: int, parts: int) -> tuple[str, ...]:
    """The last axis of `z` cut into `parts` gates of `units`."""
    return g.node("Split", [z, g.ints([units] * parts)], {"axis": -1}, outputs=parts)


def _zeros(g: OnnxGraph, like: str, state: tuple[int, ...]) -> str:
    """Zero states (batch, *state), the batch taken from `like` at run time."""
    batch = g.node("Slice", [g.node("Shape", [like]), g.ints([0]), g.ints([1])])
    dims = g.node("Concat", [batch, g.ints(state)], {"axis": 0})
    return g.node("Expand", [g.const(np.zeros((1,) * (len(state) + 1), np.float32)), dims])


def _scan(
    g: OnnxGraph,
    xz: str,
    state: tuple[int, ...],
    n_states: int,
    step: Step,
    backwards: bool,
) -> tuple[str, ...]:
    """Run `step` over axis 1 of `xz` (batch, steps, ...) from zero states of shape
    (batch, *state); returns (*final states, sequence of step outputs (batch, steps,
    *state))."""
    body = OnnxGraph()
    body._used = g._used  # one name space: ONNX wants names unique across subgraphs
    body.scope = f"{g.scope}/step"
    states = [body.fresh("state") for _ in range(n_states)]
    x_t = body.fresh("x_t")
    new, h = step(body, states, x_t)
    new = [body.node("Identity", [s]) for s in new]  # outputs distinct from inputs
    out = body.node("Identity", [h])

    def info(name: str, dims: tuple) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])

    step_dims = (None,) * len(state)  # the step input: (batch, ..., G * units)
    graph = helper.make_graph(
        body.nodes,
        body.fresh("body"),
        [info(s, state) for s in states] + [info(x_t, step_dims)],
        [info(s, state) for s in new] + [info(out, state)],
        initializer=body.initializers,
    )
    attrs = {
        "body": graph,
        "num_scan_inputs": 1,
        "scan_input_axes": [1],
        "scan_input_directions": [1 if backwards else 0],
        "scan_output_axes": [1],
    }
    zeros = _zeros(g, xz, state)
    return g.node("Scan", [zeros] * n_states + [xz], attrs, outputs=n_states + 1)


def _project(g: OnnxGraph, x: str, kernel: np.ndarray, bias: np.ndarray | None) -> str:
    """x @ kernel (+ bias) for every step at once: (batch, steps, G * units)."""
    y = g.binary("MatMul", x, g.initializer(kernel, "kernel"))
    return y if bias is None else g.binary("Add", y, g.initializer(bias, "bias"))


def _lstm_step(layer, units: int, recurrent: Callable[[OnnxGraph, str], str]) -> Step:
    """The LSTM step; `recurrent(b, h)` is the state's projection (MatMul, or ConvLSTM's
    convolution)."""
    act, rec = layer.activation, layer.recurrent_activation

    def step(b: OnnxGraph, states: list[str], x_t: str) -> tuple[list[str], str]:
        h, c = states
        z = b.binary("Add", x_t, recurrent(b, h))
        zi, zf, zc, zo = _split(b, z, units, 4)
        keep = b.binary("Mul", activation(b, zf, rec), c)
        c = b.binary("Add", keep, b.binary("Mul", activation(b, zi, rec), activation(b, zc, act)))
        h = b.binary("Mul", activation(b, zo, rec), activation(b, c, act))
        return [h, c], h

    return step


def _gru_step(layer, rk: np.ndarray, rbias: np.ndarray | None, g: OnnxGraph) -> Step:
    act, rec, u = layer.activation, layer.recurrent_activation, layer.units
    if layer.reset_after:
        rk_all = g.initializer(rk, "recurrent_kernel")
        rb = None if rbias is None else g.initializer(rbias, "recurrent_bias")
    else:
        rk_zr = g.initializer(np.ascontiguousarray(rk[:, : 2 * u]), "recurrent_kernel_zr")
        rk_h = g.initializer(np.ascontiguousarray(rk[:, 2 * u :]), "recurrent_kernel_h")

    def step(b: OnnxGraph, states: list[str], x_t: str) -> tuple[list[str], str]:
        (h,) = states
        x_z, x_r, x_h = _split(b, x_t, u, 3)
        if layer.reset_after:
            inner = b.binary("MatMul", h, rk_all)
            if rb is not None:
                inner = b.binary("Add", inner, rb)
            r_z, r_r, r_h = _split(b, inner, u, 3)
            z = activation(b, b.binary("Add", x_z, r_z), rec)
            r = activation(b, b.binary("Add", x_r, r_r), rec)
            recurrent_h = b.binary("Mul", r, r_h)
        else:
            r_z, r_r = _split(b, b.binary("MatMul", h, rk_zr), u, 2)
            z = activation(b, b.binary("Add", x_z, r_z), rec)
            r = activation(b, b.binary("Add", x_r, r_r), rec)
            recurrent_h = b.binary("MatMul", b.binary("Mul", r, h), rk_h)
        hh = activation(b, b.binary("Add", x_h, recurrent_h), act)
        one_minus = b.binary("Sub", b.const(1.0), z)
        h = b.binary("Add", b.binary("Mul", z, h), b.binary("Mul", one_minus, hh))
        return [h], h

    return step


def _simple_step(layer, rk: str) -> Step:
    def step(b: OnnxGraph, states: list[str], x_t: str) -> tuple[list[str], str]:
        (h,) = states
        h = activation(b, b.binary("Add", x_t, b.binary("MatMul", h, rk)), layer.activation)
        return [h], h

    return step


def lower_rnn(g: OnnxGraph, layer, weights, x, t, shape) -> str | tuple[str, ...]:
    """LSTM, GRU or SimpleRNN: the output (last state or the sequence), then with
    `return_state` the final states (h, c for LSTM; h otherwise)."""
    x = _float32(g, x, t)
    bias = weights.get("bias")
    rbias = None
    if layer.type == "GRU" and layer.reset_after and bias is not None:
        bias, rbias = bias[0], bias[1]
    xz = _project(g, x, weights["kernel"], bias)
    rk = weights["recurrent_kernel"]
    if layer.type == "LSTM":
        rk_name = g.initializer(rk, "recurrent_kernel")
        step, n = _lstm_step(layer, layer.units, lambda b, h: b.binary("MatMul", h, rk_name)), 2
    elif layer.type == "GRU":
        step, n = _gru_step(layer, rk, rbias, g), 1
    else:
        step, n = _simple_step(layer, g.initializer(rk, "recurrent_kernel")), 1
    *states, sequence = _scan(g, xz, (layer.units,), n, step, layer.go_backwards)
    output = sequence if layer.return_sequences else states[0]
    return (output, *states) if layer.return_state else output


def lower_conv_lstm(g: OnnxGraph, layer, weights, x, t, shape) -> str | tuple[str, ...]:
    """ConvLSTM1D/2D/3D: the input convolution of every step at once (on batch * steps
    images), then the LSTM step with the state's `same`, stride-1 convolution by the
    recurrent kernel (`compiler/layers/conv_rnn_cells.py`); states (batch, *spatial',
    filters)."""
    n, f = layer.rank, layer.filters
    _, strides, dilation = window(layer, n)
    x = _float32(g, x, t)
    dims = g.node("Shape", [x])
    rest = g.node("Slice", [dims, g.ints([2]), g.ints([t.rank])])
    flat = g.node("Reshape", [x, g.node("Concat", [g.ints([-1]), rest], {"axis": 0})])
    child = TensorType((None, *t.shape[2:]), "float32")
    y = conv(
        g,
        flat,
        weights["kernel"],
        weights.get("bias"),
        t=child,
        strides=strides,
        dilation=dilation,
        padding=layer.padding,
    )
    state = layer.state_type(t).shape[1:]
    lead = g.node("Slice", [dims, g.ints([0]), g.ints([2])])
    xz = g.node("Reshape", [y, g.node("Concat", [lead, g.ints([*state[:-1], 4 * f])], {"axis": 0})])
    rk = weights["recurrent_kernel"]
    h_type = TensorType((None, *state), "float32")
    ones = (1,) * n

    def recurrent(b: OnnxGraph, h: str) -> str:
        return conv(b, h, rk, None, t=h_type, strides=ones, dilation=ones, padding="same")

    step = _lstm_step(layer, f, recurrent)
    *states, sequence = _scan(g, xz, tuple(state), 2, step, layer.go_backwards)
    output = sequence if layer.return_sequences else states[0]
    return (output, *states) if layer.return_state else output


def _nested(g: OnnxGraph, spec, weights, prefix: str, x: str, t: TensorType):
    """Lower the wrapped layer `spec` on `x` with the wrapper's weights under `prefix`."""
    reference = type(spec).onnx
    if not reference:
        raise Unsupported(f"the wrapped {spec.type} has no ONNX lowering yet", "layer")
    inner = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    return load_reference(reference)(g, spec, inner, x, t, spec.infer(t))


def _reverse_time(g: OnnxGraph, y: str) -> str:
    """`y[:, ::-1]`: a returned backward sequence back in time order."""
    lowest = np.iinfo(np.int64).min
    return g.node("Slice", [y, g.ints([-1]), g.ints([lowest]), g.ints([1]), g.ints([-1])])


def lower_bidirectional(g: OnnxGraph, layer, weights, x, t, shape) -> str | tuple[str, ...]:
    """The forward and backward layers on the same input, merged (`merge_mode`); with
    return_state: (merged output(s), forward states, backward states)."""
    forward, backward = layer.layer, layer.backward_spec
    fname, bname = layer.wrapped_names()
    y = _nested(g, forward, weights, weight_prefix(forward, fname), x, t)
    y_rev = _nested(g, backward, weights, weight_prefix(backward, bname), x, t)
    states: tuple[str, ...] = ()
    if forward.return_state:
        states = (*y[1:], *y_rev[1:])
        y, y_rev = y[0], y_rev[0]
    if forward.return_sequences:
        y_rev = _reverse_time(g, y_rev)
    mode = layer.merge_mode
    if mode == "concat":
        merged: tuple[str, ...] = (g.node("Concat", [y, y_rev], {"axis": -1}),)
    elif mode == "sum":
        merged = (g.binary("Add", y, y_rev),)
    elif mode == "ave":
        merged = (g.binary("Div", g.binary("Add", y, y_rev), g.const(2.0)),)
    elif mode == "mul":
        merged = (g.binary("Mul", y, y_rev),)
    else:
        merged = (y, y_rev)
    out = (*merged, *states)
    return out if len(out) > 1 else out[0]


def lower_time_distributed(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """The wrapped layer on (batch * steps, ...), reshaped back to (batch, steps, ...)."""
    inner = layer.layer
    child = TensorType((None, *t.shape[2:]), t.dtype)
    dims = g.node("Shape", [x])
    rest = g.node("Slice", [dims, g.ints([2]), g.ints([t.rank])])
    flat = g.node("Reshape", [x, g.node("Concat", [g.ints([-1]), rest], {"axis": 0})])
    prefix = weight_prefix(inner, nested_name(inner))
    y = _nested(g, inner, weights, prefix, flat, child)
    if isinstance(y, tuple):
        raise Unsupported("a wrapped layer with several outputs is not exported to ONNX", "layer")
    lead = g.node("Slice", [dims, g.ints([0]), g.ints([2])])
    tail = g.node("Slice", [g.node("Shape", [y]), g.ints([1]), g.ints([shape.output.rank - 1])])
    return g.node("Reshape", [y, g.node("Concat", [lead, tail], {"axis": 0})])
