"""ONNX lowerings of Keras's activation functions (`activation:` of Dense, Conv, ...)
and of the activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax).

`activation(g, x, name, dtype)` covers every name of `schema.layer_args.ACTIVATIONS`
with Keras 3's definitions (see `compiler/layers/activations.py`): gelu is the exact
Erf form, hard_sigmoid is relu6(x + 3) / 6, leaky_relu's slope 0.2, softmax and
log_softmax over the last axis. ONNX's own Gelu/Mish/HardSwish need opsets above 17 or
use other constants, so those are spelled out in arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from modelspec.compiler.layers.onnx.graph import (
    FLOATS,
    OnnxGraph,
    Unsupported,
    compute_dtype,
    need_float,
)


def _relu6(g: OnnxGraph, x: str, dtype: str) -> str:
    return g.node("Clip", [x, g.const(0.0, dtype), g.const(6.0, dtype)])


def _hard_sigmoid(g: OnnxGraph, x: str, dtype: str) -> str:
    shifted = g.binary("Add", x, g.const(3.0, dtype))
    return g.binary("Div", _relu6(g, shifted, dtype), g.const(6.0, dtype))


def _hard_silu(g: OnnxGraph, x: str, dtype: str) -> str:
    shifted = _relu6(g, g.binary("Add", x, g.const(3.0, dtype)), dtype)
    return g.binary("Div", g.binary("Mul", x, shifted), g.const(6.0, dtype))


def _gelu(g: OnnxGraph, x: str, dtype: str) -> str:
    """Exact gelu: x * (1 + erf(x / sqrt(2))) / 2."""
    erf = g.node("Erf", [g.binary("Div", x, g.const(math.sqrt(2.0), dtype))])
    return g.binary(
        "Div", g.binary("Mul", x, g.binary("Add", erf, g.const(1.0, dtype))), g.const(2.0, dtype)
    )


def gelu_tanh(g: OnnxGraph, x: str, dtype: str) -> str:
    """Approximate gelu: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    cube = g.binary("Mul", g.binary("Mul", x, x), x)
    inner = g.binary("Add", x, g.binary("Mul", cube, g.const(0.044715, dtype)))
    t = g.node("Tanh", [g.binary("Mul", inner, g.const(math.sqrt(2.0 / math.pi), dtype))])
    half = g.binary("Mul", x, g.const(0.5, dtype))
    return g.binary("Mul", half, g.binary("Add", t, g.const(1.0, dtype)))


def _unary(op: str, **attrs: float) -> Callable[[OnnxGraph, str, str], str]:
    return lambda g, x, dtype: g.node(op, [x], dict(attrs))


ACTIVATIONS: dict[str, Callable[[OnnxGraph, str, str], str]] = {
    "linear": lambda g, x, dtype: x,
    "relu": _unary("Relu"),
    "relu6": _relu6,
    "leaky_relu": _unary("LeakyRelu", alpha=0.2),
    "elu": _unary("Elu", alpha=1.0),
    "selu": _unary("Selu"),  # ONNX's default alpha/gamma are SELU's constants
    "celu": _unary("Celu", alpha=1.0),
    "gelu": _gelu,
    "silu": lambda g, x, dtype: g.binary("Mul", x, g.node("Sigmoid", [x])),
    "swish": lambda g, x, dtype: g.binary("Mul", x, g.node("Sigmoid", [x])),
    "mish": lambda g, x, dtype: g.binary("Mul", x, g.node("Tanh", [g.node("Softplus", [x])])),
    "tanh": _unary("Tanh"),
    "sigmoid": _unary("Sigmoid"),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,
    "hard_tanh": lambda g, x, dtype: g.node("Clip", [x, g.const(-1.0, dtype), g.const(1.0, dtype)]),
    "log_sigmoid": lambda g, x, dtype: g.node("Neg", [g.node("Softplus", [g.node("Neg", [x])])]),
    "softmax": _unary("Softmax", axis=-1),
    "log_softmax": _unary("LogSoftmax", axis=-1),
    "softplus": _unary("Softplus"),
    "softsign": _unary("Softsign"),
    "exponential": _unary("Exp"),
}
"""Keras activation name -> lowering `(g, x, dtype) -> name`; `x` is a float tensor."""


def activation(g: OnnxGraph, x: str, name: str | None, dtype: str = "float32") -> str:
    """`x` through Keras's activation `name` (None: linear)."""
    return ACTIVATIONS["linear" if name is None else name](g, x, dtype)


def float_input(g: OnnxGraph, x: str, t, what: str, shape) -> tuple[str, str]:
    """A float input after Keras's autocast: (value, dtype), half precision in float32.
    Integer inputs of layers whose output is float (the `jax.nn` functions promote
    them) are cast to that float type; other integer and bool inputs are refused."""
    if t.dtype not in FLOATS and shape.output.dtype in FLOATS and t.dtype != "bool":
        return g.cast(x, shape.output.dtype), shape.output.dtype
    need_float(t, what)
    dtype = compute_dtype(t.dtype)
    return g.cast_if(x, t.dtype, dtype), dtype


def lower_relu(g, layer, weights, x, t, shape) -> str:
    """Keras's `ReLU.static_call`, step for step (see compiler/layers/activations.py).
    On integer inputs Keras casts `threshold` and `max_value` to the input's type
    (truncating) for the positive part and stays in integers unless a negative slope
    makes the result float; that is done here in float64 (exact for these types) and
    cast back."""
    slope, max_value, threshold = layer.negative_slope, layer.max_value, layer.threshold
    ints = t.dtype not in FLOATS
    if t.dtype == "bool" or (t.dtype.startswith("uint") and slope != 0.0):
        raise Unsupported(f"ReLU on {t.dtype} inputs is not exported to ONNX yet", "inputs")
    if ints:
        x, dtype = g.cast(x, "float64"), "float64"
    else:
        x, dtype = float_input(g, x, t, "ReLU", shape)
    if slope != 0.0 and max_value is None and threshold == 0:
        y = g.node("LeakyRelu", [x], {"alpha": float(slope)})
        return g.cast_if(y, dtype, shape.output.dtype)
    cut = (lambda v: float(int(v))) if ints else float  # Keras's cast to the input type
    negative = None
    if slope != 0.0:
        neg = g.node("Neg", [x])
        if threshold != 0:
            neg = g.binary("Add", neg, g.const(threshold, dtype))
        negative = g.node("Relu", [neg])
    if threshold != 0:
        keep = g.binary("Greater", x, g.const(cut(threshold), dtype))
        y = g.node("Where", [keep, x, g.const(0.0, dtype)])
    elif max_value is None:
        y = g.node("Relu", [x])
    else:
        y = x  # the Clip below floors at 0 (Relu + Clip trips onnxruntime's fusion)
    if max_value is not None:
        y = g.node("Clip", [y, g.const(0.0, dtype), g.const(cut(max_value), dtype)])
    if negative is not None:
        y = g.binary("Sub", y, g.binary("Mul", g.const(slope, dtype), negative))
    return g.cast_if(y, dtype, shape.output.dtype)


def lower_leaky_relu(g, layer, weights, x, t, shape) -> str:
    x, _ = float_input(g, x, t, "LeakyReLU", shape)
    return g.node("LeakyRelu", [x], {"alpha": float(layer.negative_slope)})


def lower_prelu(g, layer, weights, x, t, shape) -> str:
    """relu(x) - alpha * relu(-x), alpha broadcast over the shared axes (size 1)."""
    x, dtype = float_input(g, x, t, "PReLU", shape)
    alpha = g.cast_if(g.initializer(weights["alpha"], "alpha"), "float32", dtype)
    neg = g.binary("Mul", g.node("Neg", [alpha]), g.node("Relu", [g.node("Neg", [x])]))
    return g.binary("Add", g.node("Relu", [x]), neg)


def lower_elu(g, layer, weights, x, t, shape) -> str:
    """jax.nn.elu: x where x > 0 else alpha * expm1(x) (ONNX Elu is the same formula)."""
    x, dtype = float_input(g, x, t, "ELU", shape)
    return g.node("Elu", [x], {"alpha": float(layer.alpha)})


def lower_softmax(g, layer, weights, x, t, shape) -> str:
    x, dtype = float_input(g, x, t, "Softmax", shape)
    axes = layer.axes(t.rank)
    if len(axes) == 1:
        return g.node("Softmax", [x], {"axis": axes[0]})
    # Several axes: exp(x - logsumexp(x, axes)), as Keras does.
    lse = g.node("ReduceLogSumExp", [x], {"axes": list(axes), "keepdims": 1})
    return g.node("Exp", [g.binary("Sub", x, lse)])
