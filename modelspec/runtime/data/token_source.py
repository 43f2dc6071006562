"""Reading a `tokens` source: one token file cut into next-token windows, read lazily.

A language-model corpus is one long array of token ids, often many GB (OpenWebText as
nanoGPT prepares it: 9 billion uint16 tokens, 18 GB). Copying it into (examples,
sequence_length) input and target arrays would double it and load it whole, so the
file is memory-mapped and each model array is a `TokenWindows`: it has the shape and
dtype the windowed array would have and behaves like an array where the data code uses
one (`len`, `shape`, `dtype`, slicing and fancy indexing give smaller `TokenWindows`,
`astype` records the cast, `min`/`max` scan the file in chunks), but its rows exist
only when a batch reads them (`np.asarray(windows[rows])` or `read_into`). So
`ArrayDataset` batches, validation splits, the prefetching workers and resume work
unchanged, and a batch reads only its own `batch_size * sequence_length` tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelspec.runtime.data.lazy_rows import LazyRows
from modelspec.runtime.data.npfiles import ArrayFileError, file_kind, load_npy
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext, SpecPath
from modelspec.schema.data_tokens import TokensSource

__all__ = ["TokenWindows", "read_tokens", "read_token_file"]

CHUNK_TOKENS = 1 << 24
"""Tokens read per step of a scan over the file (16 Mi: 32 MiB of uint16)."""

_BIN_DEFAULT = "uint16"
"""The dtype of a raw `.bin` token file when the source does not say (nanoGPT's)."""


class TokenStats:
    """Min and max of a token array per aligned chunk of `CHUNK_TOKENS`, computed once
    and shared by every `TokenWindows` of the array: the input windows `[s, s+L)` and the
    target windows `[s+1, s+L+1)` span all but one token alike, so checking both reads
    a multi-GB file about once, not twice."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = tokens
        self._chunks: dict[tuple[int, int | None], tuple[int, int] | None] = {}

    @staticmethod
    def _range(piece: np.ndarray, exclude: int | None) -> tuple[int, int] | None:
        if exclude is not None:
            piece = piece[piece != exclude]
        return (int(piece.min()), int(piece.max())) if piece.size else None

    def _chunk(self, k: int, exclude: int | None) -> tuple[int, int] | None:
        key = (k, exclude)
        if key not in self._chunks:
            piece = np.asarray(self.tokens[k * CHUNK_TOKENS : (k + 1) * CHUNK_TOKENS])
            self._chunks[key] = self._range(piece, exclude)
        return self._chunks[key]

    def span(self, lo: int, hi: int, exclude: int | None) -> list[tuple[int, int]]:
        """The (min, max) of the pieces of `tokens[lo:hi]`: whole aligned chunks from the
        cache, the partial ones at either end read directly."""
        first, last = -(-lo // CHUNK_TOKENS), hi // CHUNK_TOKENS  # whole chunks [first, last)
        if first >= last:
            edges = [(lo, hi)]
        else:
            edges = [(lo, first * CHUNK_TOKENS), (last * CHUNK_TOKENS, hi)]
        found = [self._chunk(k, exclude) for k in range(first, last)]
        found += [self._range(np.asarray(self.tokens[a:b]), exclude) for a, b in edges if a < b]
        return [r for r in found if r is not None]


class TokenWindows(LazyRows):
    """A lazy (windows, length) array of windows of a 1-D token array (see module doc):
    row `i` is `tokens[starts[i] : starts[i] + length]`, cast to `dtype`."""

    ndim = 2

    def __init__(
        self,
        tokens: np.ndarray,
        starts: np.ndarray,
        length: int,
        dtype: Any = None,
        stats: TokenStats | None = None,
    ) -> None:
        super().__init__(
            np.asarray(starts, dtype=np.int64), tokens.dtype if dtype is None else dtype
        )
        self.tokens = tokens
        self.length = int(length)
        self.stats = stats or TokenStats(tokens)
        self._ranges: dict[int | None, tuple[int, int]] = {}

    @property
    def starts(self) -> np.ndarray:
        """The file offset of each window."""
        return self.keys

    @property
    def row_shape(self) -> tuple[int]:
        return (self.length,)

    def _like(self, keys: np.ndarray, dtype: np.dtype) -> TokenWindows:
        return TokenWindows(self.tokens, keys, self.length, dtype, self.stats)

    def read_into(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Copy the windows of `rows` into `out` (len(rows), length), cast to its dtype:
        one gather from the memory map, which touches only those windows' pages."""
        starts = self.starts[np.asarray(rows, dtype=np.int64)]
        out[...] = self.tokens[starts[:, None] + np.arange(self.length)]

    def _contiguous(self) -> bool:
        """Whether the windows cover one span of the file (sorted, touching or
        overlapping: any stride up to the window length), as a source's windows do."""
        steps = np.diff(self.starts)
        return bool(np.all(steps >= 0) and np.all(steps <= self.length))

    def _blocks(self):
        """(file offsets, tokens) of the windows in blocks of about `CHUNK_TOKENS`."""
        per = max(1, CHUNK_TOKENS // self.length)
        for i in range(0, len(self.starts), per):
            offsets = self.starts[i : i + per, None] + np.arange(self.length)
            yield offsets, self.tokens[offsets]

    def value_range(self, exclude: int | None = None) -> tuple[int, int]:
        """(min, max) of the token ids in the windows, ignoring `exclude` (a loss's
        `ignore_class`); (0, 0) when none is left. Scanned once, in chunks."""
        if exclude not in self._ranges:
            if not len(self.starts):
                found = []
            elif self._contiguous():
                end = int(self.starts[-1]) + self.length
                found = self.stats.span(int(self.starts[0]), end, exclude)
            else:
                found = [TokenStats._range(v, exclude) for _, v in self._blocks()]
                found = [r for r in found if r is not None]
            low = min((lo for lo, _ in found), default=0)
            self._ranges[exclude] = (low, max((hi for _, hi in found), default=0))
        return self._ranges[exclude]

    def min(self) -> int:
        return self.value_range()[0]

    def max(self) -> int:
        return self.value_range()[1]

    def first_outside(self, low: int, high: int) -> str | None:
        """Where the first token id outside [low, high) is, in the file's terms."""
        if self._contiguous() and len(self.starts):
            lo, end = int(self.starts[0]), int(self.starts[-1]) + self.length
            pieces = (
                (np.arange(a, min(a + CHUNK_TOKENS, end)), self.tokens[a : a + CHUNK_TOKENS])
                for a in range(lo, end, CHUNK_TOKENS)
            )
        else:
            pieces = self._blocks()
        for offsets, values in pieces:
            values = np.asarray(values)[: offsets.size].reshape(offsets.shape)
            bad = np.flatnonzero((values < low) | (values >= high))
            if bad.size:
                offset = int(offsets.reshape(-1)[bad[0]])
                return f"token {offset} of the file (counting from 0)"
        return None

    def __repr__(self) -> str:
        return f"TokenWindows(shape={self.shape}, dtype={self.dtype})"


def read_token_file(file: Path, dtype: str | None) -> np.ndarray:
    """The token ids of `file`, memory-mapped: a 1-D integer `.npy` array, or a raw
    file of `dtype` integers (default uint16). `ArrayFileError` (its message naming
    the file) for anything else."""
    what = f"file {str(file)!r}"
    kind = None
    try:
        kind = file_kind(file)
    except ArrayFileError:
        pass  # neither .npy nor .npz: a raw token file
    if kind == "npz":
        raise ArrayFileError(
            f"{what} is an .npz archive; a tokens source reads one .npy array or a raw .bin file",
            hint="Save the token ids with np.save(path, ids), or use `type: npz`.",
        )
    if kind == "npy":
        if dtype is not None:
            raise ArrayFileError(
                f"{what} is an .npy file, whose header states its dtype, but `dtype: {dtype}` is "
                "given (for raw .bin files)",
                hint="Remove `dtype`.",
            )
        tokens = load_npy(file, what)
    else:
        want = np.dtype(dtype or _BIN_DEFAULT)
        size = file.stat().st_size
        if size % want.itemsize:
            raise ArrayFileError(
                f"{what} holds {size} bytes, not a whole number of {want} tokens "
                f"({want.itemsize} bytes each)",
                hint="Check `dtype:` (nanoGPT and MaxText write uint16).",
            )
        if size == 0:
            return np.empty(0, want)
        tokens = np.memmap(file, want, mode="r")
    if tokens.ndim != 1:
        raise ArrayFileError(
            f"{what} holds an array of shape {tokens.shape}; a token file holds one 1-D array "
            "of token ids",
            hint="Flatten it: np.save(path, ids.reshape(-1)).",
        )
    if tokens.dtype.kind not in "iu":
        raise ArrayFileError(
            f"{what} holds {tokens.dtype} values; token ids must be integers",
            hint="Save the ids with an integer dtype, e.g. ids.astype(np.uint16).",
        )
    return tokens


def _names(source: TokensSource, raw: RawSource, ctx: ReadContext) -> tuple[str | None, ...]:
    """(input, target) the windows feed; None where it cannot be decided (reported) or,
    for the target, where no target is needed."""
    inp, target = source.input, source.target
    if inp is None and len(ctx.model_inputs) == 1:
        inp = next(iter(ctx.model_inputs))
    elif inp is None:
        ctx.rep.error(
            raw.where,
            f"{raw.label}: the model has inputs {list(ctx.model_inputs)}; say which one the "
            "tokens feed",
            hint="Add `input: <model input name>`.",
        )
    elif inp not in ctx.model_inputs:
        ctx.not_a_model_name(raw, (*raw.where, "input"), inp, "input", ctx.model_inputs)
        inp = None
    if target is None and len(ctx.needed_outputs) == 1:
        target = ctx.needed_outputs[0]
    elif target is None and ctx.needed_outputs:
        ctx.rep.error(
            raw.where,
            f"{raw.label}: the model has outputs {ctx.needed_outputs}; say which one the "
            "next tokens are the targets of",
            hint="Add `target: <model output name>`.",
        )
    elif target is not None and target not in ctx.model_outputs:
        ctx.not_a_model_name(raw, (*raw.where, "target"), target, "output", ctx.model_outputs)
        target = None
    elif target is not None and target not in ctx.needed_outputs:
        target = None  # an output without a loss needs no targets
    return inp, target


def _length_fits(source: TokensSource, raw: RawSource, ctx: ReadContext, inp: str) -> bool:
    """Whether the model input takes (batch, sequence_length) windows (reported if not)."""
    shape = ctx.model_inputs[inp].shape
    if len(shape) != 2:
        ctx.rep.error(
            raw.where,
            f"{raw.label}: a tokens source feeds a (batch, sequence_length) input, but "
            f"model input {inp!r} has shape {list(shape[1:])}",
            received=f"shape {list(shape[1:])}",
            hint=f"Declare model.inputs.{inp}.shape: [{source.sequence_length}].",
        )
        return False
    if shape[1] is not None and shape[1] != source.sequence_length:
        ctx.rep.error(
            (*raw.where, "sequence_length"),
            f"{raw.label}: sequence_length {source.sequence_length} differs from the "
            f"length of model input {inp!r}, {shape[1]}",
            received=f"sequence_length={source.sequence_length}",
            hint=f"Set sequence_length: {shape[1]}, or model.inputs.{inp}.shape: "
            f"[{source.sequence_length}].",
        )
        return False
    return True


def read_tokens(source: TokensSource, raw: RawSource, ctx: ReadContext) -> None:
    """A token file as lazy next-token windows: input rows `t[s : s+L]` for the model
    input, target rows `t[s+1 : s+L+1]` for the model output, `s` every `stride`."""
    inp, target = _names(source, raw, ctx)
    fits = inp is not None and _length_fits(source, raw, ctx, inp)
    at: SpecPath = (*raw.where, "path")
    file = ctx.file(raw, source.path, at)
    if inp is None or file is None or not fits:
        return
    try:
        tokens = read_token_file(file, source.dtype)
    except ArrayFileError as exc:
        ctx.rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)
        return
    length = source.sequence_length
    if len(tokens) < length + 1:
        ctx.rep.error(
            at,
            f"{raw.label}: {str(file)!r} holds {len(tokens)} tokens, fewer than "
            f"sequence_length + 1 = {length + 1} (one window and its next-token target)",
            received=f"{len(tokens)} tokens",
            hint="Use a longer token file, or a smaller sequence_length.",
        )
        return
    stride = source.stride or length
    count = (len(tokens) - length - 1) // stride + 1
    starts = np.arange(count, dtype=np.int64) * stride
    what, stats = f"file {source.path!r}", TokenStats(tokens)
    raw.inputs[inp] = RawArray(TokenWindows(tokens, starts, length, stats=stats), what, at)
    if target is not None:
        windows = TokenWindows(tokens, starts + 1, length, stats=stats)
        raw.targets[target] = RawArray(windows, what, at)
