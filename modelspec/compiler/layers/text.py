"""The host layers: TextVectorization, StringLookup, IntegerLookup and Hashing in NumPy,
run in the data pipeline before batches reach the devices (their spec classes name these
classes in `host`; `runtime/host_stage.py` builds and calls them). No JAX here.

Each class is a `HostLayer`: built from its spec, its input type and its inferred shape;
`needs_adapt` when no vocabulary was given; `adapt(data)` learns Keras's state from the
whole training array; `get_state`/`set_state` carry it as JSON (Keras's
`get_vocabulary()` and the per-index idf weights); calling it encodes a batch of rows
into an array of the inferred output's shape (batch first) and dtype.

Inputs are NumPy arrays of Python `str` (object arrays; bytes are read as UTF-8) or of
integers, shape (N,) or (N, ...) as declared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelspec.compiler.layers.fingerprint import hash_buckets
from modelspec.compiler.layers.index_lookup import IndexLookup, encode, encode_dense
from modelspec.compiler.layers.text_ops import tokenize
from modelspec.errors import AdaptError
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.text_rules import salt_pair
from modelspec.schema.tensors import LayerShape, TensorType


def as_text(value: Any) -> str:
    """One string element: `str` as is, bytes decoded as UTF-8 (TensorFlow's strings)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def need_rows(data: Any, layer: str) -> np.ndarray:
    """The array, refused when it is empty (nothing to adapt on)."""
    data = np.asarray(data)
    if data.size == 0:
        raise AdaptError(
            f"{layer} cannot adapt on empty training data",
            hint="Give the layer a `vocabulary`, or check the data source.",
        )
    return data


class HostLayer:
    """The contract of a host layer (see the module docstring)."""

    needs_adapt: bool = False

    def __init__(self, layer: LayerSpec, input_type: TensorType, shape: LayerShape) -> None:
        self.layer = layer
        self.input_type = input_type
        self.output = shape.output

    def adapt(self, data: np.ndarray) -> None:
        """Learn the state from the whole training array of the layer's input."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        del state

    def __call__(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_rows(self, data: np.ndarray) -> np.ndarray:
        """`data` with the declared per-sample shape, as an array."""
        data = np.asarray(data, dtype=object if self.input_type.dtype == "string" else None)
        want = self.input_type.shape[1:]
        if data.ndim != len(want) + 1 or any(
            w is not None and w != d for w, d in zip(want, data.shape[1:], strict=True)
        ):
            raise ValueError(
                f"{self.layer.type} expects rows of shape {want}, got an array of "
                f"shape {data.shape}"
            )
        return data


class _Lookup(HostLayer):
    """StringLookup and IntegerLookup: an IndexLookup over the elements of the input."""

    integer = False

    def __init__(self, layer: Any, input_type: TensorType, shape: LayerShape) -> None:
        super().__init__(layer, input_type, shape)
        self.index = IndexLookup(layer.rules(), integer=self.integer)
        self.needs_adapt = self.index.needs_adapt

    def _values(self, data: np.ndarray) -> list[Any]:
        flat = np.asarray(data).reshape(-1)
        if self.integer:
            return [int(v) for v in flat]
        return [as_text(v) for v in flat]

    def adapt(self, data: np.ndarray) -> None:
        """Keras adapts on the array as (N, ...) documents: a rank-1 array is one token
        per document."""
        data = need_rows(data, self.layer.type)
        rows = data.reshape(len(data), -1)
        self.index.adapt([self._values(r) for r in rows])
        self.needs_adapt = False

    def get_state(self) -> dict[str, Any]:
        return self.index.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.index.set_state(state)
        self.needs_adapt = False

    def __call__(self, data: np.ndarray) -> np.ndarray:
        data = self._check_rows(data)
        indices = self.index.lookup(self._values(data)).reshape(data.shape)
        mode = self.layer.output_mode
        depth = self.output.shape[-1] if mode != "int" else 0
        return encode_dense(indices, mode, depth, self.index.idf)


class StringLookup(_Lookup):
    """Keras's StringLookup on the host."""


class IntegerLookup(_Lookup):
    """Keras's IntegerLookup on the host."""

    integer = True


class TextVectorization(HostLayer):
    """Keras's TextVectorization on the host: tokenize each text, look the tokens up,
    then pad/cut (`int`) or encode per text."""

    def __init__(self, layer: Any, input_type: TensorType, shape: LayerShape) -> None:
        super().__init__(layer, input_type, shape)
        self.index = IndexLookup(layer.rules())
        self.needs_adapt = self.index.needs_adapt

    def tokens(self, data: np.ndarray) -> list[list[str]]:
        texts = [as_text(t) for t in np.asarray(data, dtype=object).reshape(-1)]
        layer = self.layer
        return tokenize(texts, layer.standardize, layer.split, layer.ngram_widths)

    def adapt(self, data: np.ndarray) -> None:
        self.index.adapt(self.tokens(need_rows(data, self.layer.type)))
        self.needs_adapt = False

    def get_state(self) -> dict[str, Any]:
        return self.index.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.index.set_state(state)
        self.needs_adapt = False

    def __call__(self, data: np.ndarray) -> np.ndarray:
        rows = self.tokens(self._check_rows(data))
        n = len(rows)
        lengths = np.fromiter((len(r) for r in rows), np.int64, count=n)
        flat = [t for r in rows for t in r]
        indices = self.index.lookup(flat)
        row_ids = np.repeat(np.arange(n), lengths)
        width = self.output.shape[-1]
        if self.layer.output_mode != "int":
            return encode(indices, row_ids, n, self.layer.output_mode, width, self.index.idf)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        position = np.arange(len(flat), dtype=np.int64) - np.repeat(starts, lengths)
        keep = position < width
        out = np.zeros((n, width), np.int32)
        out[row_ids[keep], position[keep]] = indices[keep]
        return out


class Hashing(HostLayer):
    """Keras's Hashing on the host: a bin per value, then the encoding."""

    def __init__(self, layer: Any, input_type: TensorType, shape: LayerShape) -> None:
        super().__init__(layer, input_type, shape)
        self.salt = salt_pair(layer.salt)

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Keras's `_hash_values_to_bins` on a flat array (int64)."""
        layer = self.layer
        strings = self.input_type.dtype == "string"
        keys = [as_text(v) for v in values] if strings else [int(v) for v in values]
        bins = layer.num_bins
        masked = None
        if layer.mask_value is not None and bins > 1:
            bins -= 1
            masked = np.fromiter((k == layer.mask_value for k in keys), bool, count=len(keys))
        distinct = list(dict.fromkeys(keys))
        hashed = hash_buckets([str(k) for k in distinct], bins, self.salt)
        table = dict(zip(distinct, hashed, strict=True))
        out = np.fromiter((table[k] for k in keys), np.int64, count=len(keys))
        if masked is not None:
            out = np.where(masked, 0, out + 1)
        return out

    def __call__(self, data: np.ndarray) -> np.ndarray:
        data = self._check_rows(data)
        indices = self.bins(np.asarray(data).reshape(-1)).reshape(data.shape)
        return encode_dense(indices, self.layer.output_mode, self.layer.num_bins, None)
