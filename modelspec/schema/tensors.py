"""The shape vocabulary: pure-Python descriptions of tensors and parameters.

Every layer spec's `infer` speaks it (input TensorTypes in, a LayerShape out, ShapeError
for impossible inputs), and summaries, data checks and sharding plans read it. It lives
in `schema/` because the layer contract is written in it, and it never imports JAX:
`check` and `summary` must run without it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

Dim = int | None
"""A dimension; None is unknown (the batch axis, or a variable sequence length)."""

MAX_RANK = 64
"""Most axes a tensor may have, the batch axis included: NumPy's limit (so Keras's too).
Also what keeps shape inference linear: some layers' checks compare axes pairwise, and a
spec with a 100,000-axis input took minutes in them (found by the spec fuzzer)."""

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int32", "int64", "int8", "uint8", "bool")


def format_shape(shape: tuple[Dim, ...]) -> str:
    """Keras style: `(None, 32)`."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


@dataclass(frozen=True)
class TensorType:
    """Shape (batch axis first, usually None) and dtype of one tensor in the graph."""

    shape: tuple[Dim, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if len(self.shape) > MAX_RANK:
            raise ShapeError(
                f"a tensor may have at most {MAX_RANK} axes (the batch axis included); "
                f"this one would have {len(self.shape):,}"
            )

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return format_shape(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class ParamInfo:
    """One variable of a layer, known before anything is built.

    `path` is relative to the layer and uses Keras's weight names ("kernel",
    "query/kernel"); `axes` are logical axis names (None = never sharded), used later
    to map parameters onto a device mesh; `collection` is "params" for trainable
    weights and "batch_stats" for mutable non-trainable state (Keras counts those as
    non-trainable parameters), or "adapted" for state a fresh run learns from the
    training data before step 1 (Keras's `adapt`; kept with the frozen weights).
    """

    path: str
    shape: tuple[int, ...]
    axes: tuple[str | None, ...]
    collection: str = "params"
    trainable: bool = True

    def __post_init__(self) -> None:
        if len(self.axes) != len(self.shape):
            raise ValueError(f"{self.path}: {len(self.axes)} axes for shape {self.shape}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def stacked(self, count: int, path: str) -> ParamInfo:
        """This variable as a scanned block stack holds it: `count` copies on a leading
        `layers` axis (never sharded by default), under `path`."""
        return dataclasses.replace(
            self, path=path, shape=(count, *self.shape), axes=("layers", *self.axes)
        )


@dataclass(frozen=True)
class LayerShape:
    """What shape inference knows about one layer: its output(s) and its variables.

    Most layers return one tensor, `output`. A multi-output layer (an RNN with
    `return_state`, Keras's list return) also fills `extra_outputs`, in Keras's order
    after the first; `outputs` is all of them. Code that reads only `output` sees the
    first tensor, as before multi-output layers existed."""

    output: TensorType
    params: tuple[ParamInfo, ...] = ()
    extra_outputs: tuple[TensorType, ...] = ()
    mask: TensorType | None = None
    """The Keras mask riding along with `output` (a bool tensor, usually (batch, steps)),
    or None: what later layers' `<argument>_mask` and the loss see. Set by the graph
    pass from the spec's `infer_mask`, not by `infer`: it depends on the layers upstream."""
    graph_mask: TensorType | None = None
    """The mask Keras's functional graph recorded for `output` when the model was built;
    layers taking `mask=` get this one. It differs from `mask` only after an attention
    layer removed its inputs' masks at run time (`clears_input_masks`)."""

    @property
    def outputs(self) -> tuple[TensorType, ...]:
        """Every tensor the layer returns, the first being `output`."""
        return (self.output, *self.extra_outputs)

    @property
    def trainable_count(self) -> int:
        return sum(p.size for p in self.params if p.trainable)

    @property
    def non_trainable_count(self) -> int:
        return sum(p.size for p in self.params if not p.trainable)


class ShapeError(Exception):
    """Raised by a layer spec's `infer`; the graph pass turns it into a positioned
    Diagnostic.

    `field` names the layer argument at fault (the error is then positioned on it),
    or "inputs" when the incoming tensors are the problem.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        received: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.received = received
        self.hint = hint
