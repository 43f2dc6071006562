"""Keras's IndexLookup on the host, in NumPy: the vocabulary (given, or learned by
`adapt`), the lookup of tokens to indices, and the encodings. StringLookup,
IntegerLookup and TextVectorization (a StringLookup with mask token "") use it.

The reserved layout and the checks of a given vocabulary are `LookupRules`
(`schema/layers/text_rules.py`), shared with shape inference. What follows
`keras/src/layers/preprocessing/index_lookup.py`:

- adapt: token counts over all tokens, the mask and OOV tokens removed, sorted by count
  descending with ties by the token descending (`np.lexsort((tokens, counts))[::-1]`),
  cut to `max_tokens` minus the reserved indices; tf_idf also counts the documents
  (rows) holding each token: idf = log(1 + documents / (1 + document count)) (float64,
  stored float32), the reserved indices weighing the mean of those (float32), zeros up
  to `max_tokens` with `pad_to_max_tokens`.
- lookup: the token's index; the mask token -> 0 in `int` mode and dropped otherwise;
  an OOV token -> the single OOV index, or with several OOV buckets `oov_start +
  hash(token) % num_oov_indices` (FarmHash Fingerprint64, SipHash with `salt`, or the
  integer's floor-mod for IntegerLookup's `floormod`); with none, an error.
- encodings: `one_hot` per token, `multi_hot`/`count` per sample (bincount with
  `maxlength` = the width, which drops masked tokens), `tf_idf` = count * idf.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelspec.compiler.layers.fingerprint import hash_buckets
from modelspec.errors import AdaptError
from modelspec.schema.layers.text_rules import LookupRules, Token
from modelspec.schema.tensors import ShapeError

DROPPED = np.iinfo(np.int64).max
"""Keras's index for mask tokens outside `int` mode: out of every output's range."""


class IndexLookup:
    """One vocabulary and its lookup table (strings, or ints for IntegerLookup)."""

    def __init__(self, rules: LookupRules, integer: bool = False) -> None:
        self.rules = rules
        self.integer = integer
        self.tokens: list[Token] = []
        self.idf: np.ndarray | None = None
        self.table: dict[Token, int] = {}
        self.needs_adapt = rules.vocabulary is None
        if rules.vocabulary is not None:
            idf = rules.idf(rules.vocabulary, rules.idf_weights) if self.tf_idf else None
            self._set(rules.tokens(rules.vocabulary), idf)

    @property
    def tf_idf(self) -> bool:
        return self.rules.output_mode == "tf_idf"

    def _set(self, tokens: list[Token], idf: Sequence[float] | None) -> None:
        start = self.rules.token_start
        self.tokens = list(tokens)
        self.table = {t: start + i for i, t in enumerate(self.tokens)}
        self.idf = None if idf is None else np.asarray(idf, np.float32)

    # -- state ------------------------------------------------------------------------
    def vocabulary(self) -> list[Token]:
        """Keras's `get_vocabulary()`: the reserved entries, then the tokens."""
        return [*self.rules.specials, *self.tokens]

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"vocabulary": self.vocabulary()}
        if self.idf is not None:
            state["idf_weights"] = [float(w) for w in self.idf]
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Take a state `get_state` wrote (the whole vocabulary, reserved entries first,
        and the weight of every output index)."""
        try:
            tokens = self.rules.tokens(state["vocabulary"])
        except ShapeError as exc:
            raise ValueError(f"the stored vocabulary {exc.message}") from None
        idf = state.get("idf_weights")
        if self.tf_idf and (idf is None or len(idf) != self.width(len(tokens))):
            raise ValueError("the stored idf weights do not match the vocabulary")
        self._set(tokens, idf if self.tf_idf else None)

    def width(self, n_tokens: int | None = None) -> int:
        """The output width of the non-`int` modes."""
        r = self.rules
        if r.pad_to_max_tokens and r.max_tokens is not None:
            return r.max_tokens
        return r.token_start + (len(self.tokens) if n_tokens is None else n_tokens)

    # -- adapt ------------------------------------------------------------------------
    def adapt(self, documents: Sequence[Sequence[Token]]) -> None:
        """Learn the vocabulary (and idf weights) from the tokens of each document."""
        r = self.rules
        counts = Counter(t for doc in documents for t in doc)
        for special in (r.mask_token, r.oov_token):
            counts.pop(special, None)
        if not counts:
            raise AdaptError(
                "the training data holds no tokens to learn a vocabulary from",
                hint="Check the input column, or give `vocabulary` in the spec.",
            )
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        if r.max_tokens:
            ranked = ranked[: max(r.max_tokens - r.token_start, 0)]
        tokens = [t for t, _ in ranked]
        idf = None
        if self.tf_idf:
            in_docs = Counter(t for doc in documents for t in set(doc))
            n_docs = len(documents)
            learned = np.asarray(
                [math.log(1 + n_docs / (1 + in_docs[t])) for t in tokens], np.float64
            ).astype(np.float32)
            mean = np.mean(learned, dtype=np.float32) if len(learned) else np.float32("nan")
            idf = np.concatenate([np.full(r.token_start, mean, np.float32), learned])
            if r.pad_to_max_tokens and r.max_tokens is not None:
                idf = np.pad(idf, (0, r.max_tokens - len(idf)))
        self._set(tokens, idf)
        self.needs_adapt = False

    # -- call -------------------------------------------------------------------------
    def lookup(self, tokens: Sequence[Token]) -> np.ndarray:
        """The int64 index of each token (flat)."""
        r = self.rules
        oov_start = r.oov_start
        missing = -1
        out = np.fromiter(
            (self.table.get(t, missing) for t in tokens), dtype=np.int64, count=len(tokens)
        )
        if r.mask_token is not None:
            masked = np.fromiter((t == r.mask_token for t in tokens), bool, count=len(tokens))
            out[masked] = 0 if r.output_mode == "int" else DROPPED
        oov = np.flatnonzero(out == missing)
        if oov.size:
            if r.num_oov_indices == 0:
                shown = sorted({str(tokens[i]) for i in oov[:10]})
                raise ValueError(
                    "with num_oov_indices=0 all inputs must be in the vocabulary; "
                    f"found OOV values {shown}"
                )
            if r.num_oov_indices == 1:
                out[oov] = oov_start
            else:
                out[oov] = oov_start + self._buckets([tokens[i] for i in oov])
        return out

    def _buckets(self, tokens: list[Token]) -> np.ndarray:
        n = self.rules.num_oov_indices
        if self.integer and self.rules.floormod:
            return np.asarray([int(t) % n for t in tokens], np.int64)
        distinct = sorted(set(tokens), key=str)
        text = [str(int(t)) if self.integer else str(t) for t in distinct]
        bucket = dict(zip(distinct, hash_buckets(text, n, self.rules.salt), strict=True))
        return np.asarray([bucket[t] for t in tokens], np.int64)


def encode(
    indices: np.ndarray,
    rows: np.ndarray,
    n_rows: int,
    mode: str,
    depth: int,
    idf: np.ndarray | None = None,
) -> np.ndarray:
    """Keras's `encode_categorical_inputs` for `multi_hot`/`count`/`tf_idf` over samples:
    `indices` (flat) belong to samples `rows`; indices outside [0, depth) are dropped,
    as TensorFlow's bincount with `maxlength` drops them. float32 (n_rows, depth)."""
    out = np.zeros((n_rows, depth), np.float32)
    keep = (indices >= 0) & (indices < depth)
    np.add.at(out, (rows[keep], indices[keep]), 1.0)
    if mode == "multi_hot":
        return np.minimum(out, 1.0)
    if mode == "tf_idf":
        assert idf is not None
        return out * idf[None, :]
    return out


def one_hot(indices: np.ndarray, depth: int) -> np.ndarray:
    """`one_hot` of an index array: a float32 vector per index (zeros when outside)."""
    flat = indices.reshape(-1)
    out = np.zeros((flat.size, depth), np.float32)
    keep = np.flatnonzero((flat >= 0) & (flat < depth))
    out[keep, flat[keep]] = 1.0
    return out.reshape(*indices.shape, depth)


def encode_dense(indices: np.ndarray, mode: str, depth: int, idf: np.ndarray | None) -> np.ndarray:
    """Encode an index array of the input's shape: `int` (int32), `one_hot` (a last
    axis of size 1 replaced), or a per-sample encoding of (batch, tokens)."""
    if mode == "int":
        return indices.astype(np.int32)
    if mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
        return one_hot(indices, depth)
    n, k = indices.shape
    rows = np.repeat(np.arange(n), k)
    return encode(indices.reshape(-1), rows, n, mode, depth, idf)
