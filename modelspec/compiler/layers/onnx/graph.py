"""`OnnxGraph`: the small builder every ONNX lowering writes into.

modelspec lowers its own layer graph to ONNX (opset 17) with the `onnx` package
rather than tracing JAX with jax2onnx (whose releases pin orbax-checkpoint below ours
and which cannot convert reverse scans): each layer type's spec class names its
lowering in its `onnx` class variable ("module:function"), one module per family in
this package, beside the NNX classes.

A lowering has the signature

    def lower_<type>(g: OnnxGraph, layer: <SpecClass>, weights: dict[str, np.ndarray],
                     inputs, input_types, shape: LayerShape) -> str | tuple[str, ...]

- `layer`: the validated spec (its fields are Keras's arguments);
- `weights`: the layer's variables by Keras path, as in `spec.shapes[name].params`
  ("kernel", "bias", "gamma", "moving_mean", "query/kernel"), float32 numpy arrays;
- `inputs` / `input_types`: the ONNX value names and their `TensorType`s in the call
  kind's form (one for `Single`, a list for `Merge`, a dict by argument for `Named`);
  the dtypes are the ones the graph really carries (float32 where a mixed dtype policy
  would compute in half precision: exports compute in float32);
- `shape`: the layer's inferred `LayerShape` (output types, with the same dtype rule).

It returns the name of its output value (a tuple of names for a multi-output layer),
computed with inference-mode semantics: dropout, noise and random augmentation are the
identity, BatchNormalization uses its moving statistics. Values are batch-first,
channels-last as in Keras; lowerings transpose around ONNX's channels-first operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
"""The ONNX opset the exports target (LayerNormalization needs 17)."""

_DTYPES = {
    "float32": TensorProto.FLOAT,
    "float64": TensorProto.DOUBLE,
    "float16": TensorProto.FLOAT16,
    "bfloat16": TensorProto.BFLOAT16,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
}


def onnx_dtype(dtype: str) -> int:
    """The TensorProto element type of a modelspec dtype name."""
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"dtype {dtype!r} has no ONNX element type") from None


FLOATS = ("float16", "bfloat16", "float32", "float64")


class Unsupported(Exception):
    """Raised by a lowering for a configuration it cannot express exactly in ONNX
    (e.g. integer inputs where Keras's integer arithmetic would differ): the exporter
    turns it into a positioned error at the layer's `field`, and writes nothing."""

    def __init__(self, message: str, field: str = "type") -> None:
        super().__init__(message)
        self.field = field


def need_float(types: Any, what: str) -> None:
    """Refuse non-float inputs (`types`: one TensorType, a list or a dict): Keras keeps
    integer arithmetic there (wrap-around, truncation) that the float graph would not."""
    flat = list(types.values()) if isinstance(types, dict) else types
    flat = flat if isinstance(flat, list) else [flat]
    bad = [t.dtype for t in flat if t.dtype not in FLOATS]
    if bad:
        raise Unsupported(f"{what} on {bad[0]} inputs is not exported to ONNX yet", "inputs")


def compute_dtype(dtype: str) -> str:
    """Keras's float32 policy: half-precision floats are computed in float32."""
    return "float32" if dtype in ("float16", "bfloat16") else dtype


class OnnxGraph:
    """Nodes and initializers of one ONNX graph, with unique value names.

    `scope` (set by the exporter to the layer's name) prefixes every name a lowering
    creates, so a Netron view or an onnxruntime error names the layer."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.scope = ""
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}

    def reserve(self, name: str) -> None:
        """Mark a name (a graph input) as taken."""
        self._used.add(name)

    def fresh(self, base: str) -> str:
        """A value or node name not used before, prefixed with the scope."""
        stem = f"{self.scope}/{base}" if self.scope else base
        name, i = stem, 1
        while name in self._used:
            name, i = f"{stem}_{i}", i + 1
        self._used.add(name)
        return name

    def initializer(self, array: np.ndarray, base: str = "w") -> str:
        """A constant tensor stored in the file (weights), by value name."""
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, value: Any, dtype: str = "float32") -> str:
        """A small constant (scalar or array) of `dtype`, shared by equal values."""
        arr = np.asarray(value, dtype=np.dtype(dtype) if dtype != "bfloat16" else np.float32)
        key = (self.scope, dtype, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.initializer(arr, "const")
            if dtype == "bfloat16":  # numpy has no bfloat16: store float32 and cast
                name = self.cast(name, "bfloat16")
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values: Sequence[int]) -> str:
        """An int64 1-D constant (shapes, axes, pads of the operators taking tensors)."""
        return self.const(list(values), "int64")

    def node(
        self,
        op: str,
        inputs: Sequence[str],
        attrs: dict[str, Any] | None = None,
        outputs: int = 1,
    ) -> Any:
        """Append an `op` node; returns its output name (a tuple when `outputs` > 1).
        An empty string in `inputs` is an omitted optional input."""
        names = [self.fresh(op.lower()) for _ in range(outputs)]
        self.nodes.append(
            helper.make_node(op, list(inputs), names, name=self.fresh(op), **(attrs or {}))
        )
        return names[0] if outputs == 1 else tuple(names)

    # ---- shorthands used by several families ----

    def cast(self, x: str, dtype: str) -> str:
        return self.node("Cast", [x], {"to": onnx_dtype(dtype)})

    def cast_if(self, x: str, have: str, want: str) -> str:
        """`x` cast from dtype `have` to `want` (no node when they are equal)."""
        return x if have == want else self.cast(x, want)

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.node("Transpose", [x], {"perm": list(perm)})

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """Reshape to `shape` (0 keeps that input dimension, -1 is inferred)."""
        return self.node("Reshape", [x, self.ints(shape)])

    def to_channels_first(self, x: str, rank: int) -> str:
        """(batch, *spatial, C) -> (batch, C, *spatial): ONNX's layout for Conv/Pool."""
        return self.transpose(x, [0, rank - 1, *range(1, rank - 1)])

    def to_channels_last(self, x: str, rank: int) -> str:
        """(batch, C, *spatial) -> (batch, *spatial, C)."""
        return self.transpose(x, [0, *range(2, rank), 1])

    def binary(self, op: str, a: str, b: str) -> str:
        return self.node(op, [a, b])


def autocast(g: OnnxGraph, x: str, dtype: str) -> tuple[str, str]:
    """Keras's float32 policy on an input of `dtype`: half-precision floats cast to
    float32, other dtypes (float64, ints, bools) unchanged. Returns (value, dtype)."""
    want = compute_dtype(dtype)
    return g.cast_if(x, dtype, want), want


def to_float(g: OnnxGraph, x: str, dtype: str) -> tuple[str, str]:
    """`x.astype(promote_types(dtype, float32))`: ints and bools become float32, half
    floats float32, float64 stays. Returns (value, dtype)."""
    want = "float64" if dtype == "float64" else "float32"
    return g.cast_if(x, dtype, want), want
