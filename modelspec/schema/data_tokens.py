"""The `tokens` data source: one long array of token ids cut into causal language-model
examples (input = a window of the tokens, target = the same window one token later).

A description only (pure pydantic); the reader is
`modelspec.runtime.data.token_source.read_tokens`, which memory-maps the file and reads
each batch's windows when the batch is built, so a token file of many GB is never loaded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modelspec.schema.base import PositiveInt
from modelspec.schema.data_source import SourceSpec

TOKEN_DTYPES = ("uint8", "uint16", "uint32", "int16", "int32", "int64")
"""Integer dtypes a raw `.bin` token file may hold (nanoGPT and MaxText write uint16)."""


class TokensSource(SourceSpec):
    """A token file for a causal language model, cut into examples of `sequence_length`
    tokens: example `i` has input `t[s : s + L]` and target `t[s + 1 : s + L + 1]`, where
    `s = i * stride` and `L = sequence_length` (the next-token targets of the input
    window). Windows start every `stride` tokens while a whole window and its target fit
    in the file; trailing tokens that do not fill one are not used.

    The file is either a NumPy `.npy` file holding one 1-D integer array (any integer
    dtype), or a raw `.bin` file of back-to-back integers with no header, as nanoGPT's
    and MaxText's `prepare.py` scripts write them (`dtype`, default uint16). Both are
    memory-mapped: each batch reads only its own windows. Before step 1 the file is
    scanned once (in chunks) so that a token id outside the vocabulary of the Embedding
    reading the input is an error naming the file, not silent garbage.

    `data.validation_split` holds out whole windows (`split: random` or `last`), as for
    every other source; `shuffle` reorders windows, never the tokens inside one."""

    reader = "modelspec.runtime.data.token_source:read_tokens"

    type: Literal["tokens"]
    """Source kind: a file of token ids for next-token prediction."""
    path: str = Field(min_length=1)
    """The `.npy` or `.bin` token file; a relative path is relative to the spec file's
    directory."""
    sequence_length: PositiveInt
    """Tokens per example: must equal the length of the model input it feeds."""
    stride: PositiveInt | None = None
    """Tokens between the starts of consecutive windows. Default: `sequence_length`
    (non-overlapping windows); smaller values give overlapping examples."""
    dtype: Literal["uint8", "uint16", "uint32", "int16", "int32", "int64"] | None = None
    """Integer type of a raw `.bin` file (default uint16, nanoGPT's). Not allowed for a
    `.npy` file, whose header states its dtype."""
    input: str | None = None
    """The model input the token windows feed. Default: the model's only input."""
    target: str | None = None
    """The model output the shifted windows are the targets of. Default: the model's only
    output."""

    @model_validator(mode="after")
    def _dtype_for_bin_only(self) -> TokensSource:
        if self.dtype is not None and self.path.lower().endswith(".npy"):
            raise ValueError(
                f"`dtype` is for raw .bin files; the .npy file {self.path!r} states its "
                "own dtype in its header: remove `dtype`"
            )
        return self
