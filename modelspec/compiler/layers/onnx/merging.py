"""ONNX lowerings of the merge layers (`schema/layers/merging.py`): Add, Subtract,
Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Every input is cast to the inferred output dtype first (Keras's float32 policy; the
common integer type otherwise), and the inputs folded left to right as Keras does.
Narrow integers (int8, uint8, int16, uint16) are added and multiplied in int32 and cast
back, which wraps exactly as their own arithmetic does (modulo 2^bits); bool inputs use
Or/And, which is what `jnp.add`/`jnp.multiply`/max/min compute on bools. Conventions:
see `graph.py`.
"""

from __future__ import annotations

import string

from modelspec.compiler.layers.onnx.graph import FLOATS, OnnxGraph, Unsupported
from modelspec.schema.layers.merging import result_dtype

_NARROW = ("int8", "uint8", "int16", "uint16")
_BOOL_OPS = {"Add": "Or", "Mul": "And", "Max": "Or", "Min": "And"}
_EPSILON = 1e-7
"""Keras's `backend.epsilon()`: L2 normalization caps 1/norm at 1/epsilon."""


def _fold(g: OnnxGraph, op: str, xs: list[str], types, dtype: str) -> str:
    """`op` folded over the inputs, computed in `dtype` (int32 for narrow integers)."""
    if dtype == "bool":
        if op not in _BOOL_OPS:
            raise Unsupported(f"{op} on bool inputs is not exported to ONNX", "inputs")
        op = _BOOL_OPS[op]
    work = "int32" if dtype in _NARROW else dtype
    vals = [g.cast_if(x, t.dtype, work) for x, t in zip(xs, types, strict=True)]
    out = vals[0]
    for v in vals[1:]:
        out = g.binary(op, out, v)
    return g.cast_if(out, work, dtype)


def _merge(op: str):
    def lower(g: OnnxGraph, layer, weights, xs, types, shape) -> str:
        return _fold(g, op, xs, types, shape.output.dtype)

    lower.__doc__ = f"The inputs folded with ONNX {op}."
    return lower


lower_add = _merge("Add")
lower_subtract = _merge("Sub")
lower_multiply = _merge("Mul")
lower_maximum = _merge("Max")
lower_minimum = _merge("Min")


def lower_average(g: OnnxGraph, layer, weights, xs, types, shape) -> str:
    """Sum in the inputs' common dtype (bools or-ed, narrow ints wrapping), then divide
    by their number in the output dtype."""
    total = _fold(g, "Add", xs, types, result_dtype(types))
    out = shape.output.dtype
    total = g.cast_if(total, result_dtype(types), out)
    return g.binary("Div", total, g.const(float(len(xs)), out))


def lower_concatenate(g: OnnxGraph, layer, weights, xs, types, shape) -> str:
    out = shape.output.dtype
    vals = [g.cast_if(x, t.dtype, out) for x, t in zip(xs, types, strict=True)]
    return g.node("Concat", vals, {"axis": layer.axis})


def _l2_normalize(g: OnnxGraph, x: str, axis: int, dtype: str) -> str:
    """x * min(1 / sqrt(sum(x^2)), 1/epsilon), Keras's `normalize(order=2)`."""
    squares = g.node("ReduceSum", [g.binary("Mul", x, x), g.ints([axis])], {"keepdims": 1})
    inv = g.node("Reciprocal", [g.node("Sqrt", [squares])])
    return g.binary("Mul", x, g.binary("Min", inv, g.const(1.0 / _EPSILON, dtype)))


def lower_dot(g: OnnxGraph, layer, weights, xs, types, shape) -> str:
    """Keras's `batch_dot` as one Einsum: batch axis shared, one axis of each input
    contracted, the first input's other axes then the second's; a (batch,) result gets
    a trailing axis of size 1."""
    out = shape.output.dtype
    if out not in FLOATS and out not in ("int32", "int64"):
        raise Unsupported(f"Dot with {out} output is not exported to ONNX", "inputs")
    a0, a1 = layer.dot_axes(types)
    x, y = (g.cast_if(v, t.dtype, out) for v, t in zip(xs, types, strict=True))
    if layer.normalize:
        x, y = _l2_normalize(g, x, a0, out), _l2_normalize(g, y, a1, out)
    letters = iter(string.ascii_lowercase[2:])
    lx = ["a"] + [next(letters) for _ in range(types[0].rank - 1)]
    ly = ["a"] + [next(letters) for _ in range(types[1].rank - 1)]
    lx[a0] = ly[a1] = "b"
    rest = [c for c in lx[1:] if c != "b"] + [c for c in ly[1:] if c != "b"]
    equation = f"{''.join(lx)},{''.join(ly)}->a{''.join(rest)}"
    result = g.node("Einsum", [x, y], {"equation": equation})
    return g.node("Unsqueeze", [result, g.ints([1])]) if not rest else result
