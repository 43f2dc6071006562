"""Keras's `IndexLookup` rules, shared by StringLookup, IntegerLookup and TextVectorization
(which is a StringLookup with mask token "" behind its tokenizer): the reserved indices,
the checks of the constructor arguments and of a given vocabulary, and the output width.

Pure Python, used twice: by the spec classes' `infer` (so `check` refuses what Keras's
constructor refuses, positioned on the argument) and by the host layers
(`compiler/layers/index_lookup.py`), which lay the vocabulary out by the same rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelspec.schema.tensors import ShapeError

Token = str | int
"""A vocabulary entry: a string (StringLookup, TextVectorization) or an int64."""


def salt_pair(salt: int | list[int] | None) -> tuple[int, int] | None:
    """Keras's `salt`: one int is used for both SipHash key words; a list needs two."""
    if salt is None:
        return None
    if isinstance(salt, int):
        return (salt, salt)
    if len(salt) != 2:
        raise ShapeError(
            "can only be a list of 2 integers, or a single integer",
            field="salt",
            received=f"salt={salt}",
        )
    return (salt[0], salt[1])


@dataclass(frozen=True)
class LookupRules:
    """The arguments of one Keras IndexLookup, as the host layer and `infer` need them."""

    max_tokens: int | None
    num_oov_indices: int
    mask_token: Token | None
    oov_token: Token
    output_mode: str
    pad_to_max_tokens: bool
    vocabulary: tuple[Token, ...] | None
    idf_weights: tuple[float, ...] | None
    salt: tuple[int, int] | None = None
    floormod: bool = False
    """IntegerLookup's default `oov_method`: OOV bucket = token mod num_oov_indices."""

    @property
    def oov_start(self) -> int:
        """Index of the first OOV bucket: after the mask token, which holds index 0 in
        `int` mode only (in the other modes mask tokens are dropped)."""
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    @property
    def token_start(self) -> int:
        """Index of the first vocabulary token."""
        return self.oov_start + self.num_oov_indices

    @property
    def specials(self) -> list[Token | None]:
        """The reserved entries that open Keras's `get_vocabulary()`."""
        return [self.mask_token] * self.oov_start + [self.oov_token] * self.num_oov_indices

    def check(self) -> None:
        """Keras's constructor checks, as ShapeErrors on the argument at fault."""
        if self.max_tokens is not None and self.max_tokens <= 1:
            raise ShapeError(
                "if set, must be greater than 1 (it counts the reserved OOV and mask indices too)",
                field="max_tokens",
                received=f"max_tokens={self.max_tokens}",
            )
        if self.pad_to_max_tokens and self.max_tokens is None:
            raise ShapeError(
                "needs `max_tokens`: the output is padded to that width",
                field="pad_to_max_tokens",
                received="max_tokens=None",
            )
        if self.num_oov_indices < 0:
            raise ShapeError(
                "must be greater than or equal to 0",
                field="num_oov_indices",
                received=f"num_oov_indices={self.num_oov_indices}",
            )
        if self.idf_weights is not None and self.output_mode != "tf_idf":
            raise ShapeError(
                "should only be set if `output_mode` is 'tf_idf'",
                field="idf_weights",
                received=f"output_mode={self.output_mode}",
            )
        if self.vocabulary is not None:
            self.tokens(self.vocabulary)
            if self.output_mode == "tf_idf":
                self.idf(self.vocabulary, self.idf_weights)

    def tokens(self, vocabulary: Sequence[Token], field: str = "vocabulary") -> list[Token]:
        """The tokens of a given vocabulary (Keras's `set_vocabulary`): without its
        leading reserved entries when it starts with exactly those; refused when empty,
        repeated, holding the mask token elsewhere, or larger than `max_tokens`."""
        vocab = list(vocabulary)
        if not vocab:
            raise ShapeError("cannot be empty", field=field, received=f"{field}=[]")
        start = self.token_start
        tokens = vocab[start:] if vocab[:start] == self.specials else vocab
        repeated = [t for t, n in Counter(tokens).items() if n > 1]
        if repeated:
            raise ShapeError(
                "has at least one repeated term",
                field=field,
                received=f"repeated terms {repeated}",
            )
        if self.mask_token is not None and self.mask_token in tokens:
            raise ShapeError(
                "holds the mask token at an unexpected place: leave the mask and OOV "
                "tokens out, or put them first in exactly this order: "
                f"{self.specials}",
                field=field,
                received=f"mask_token={self.mask_token!r} at index "
                f"{len(vocab) - 1 - vocab[::-1].index(self.mask_token)}",
            )
        size = start + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ShapeError(
                f"is larger than `max_tokens` ({self.max_tokens}) with the "
                f"{start} reserved indices",
                field=field,
                received=f"vocabulary size {size}",
            )
        return tokens

    def idf(self, vocabulary: Sequence[Token], weights: Sequence[float] | None) -> list[float]:
        """The weight of every output index for a given vocabulary (Keras's
        `set_vocabulary`): the given weights, after the average weight for each reserved
        index when the vocabulary leaves those out, then zeros up to `max_tokens` with
        `pad_to_max_tokens`."""
        if weights is None:
            raise ShapeError(
                "must be given with `vocabulary` in output_mode 'tf_idf' (the inverse "
                "document frequency of each term)",
                field="idf_weights",
                received="idf_weights=None",
            )
        if len(weights) != len(vocabulary):
            raise ShapeError(
                "must be the same length as `vocabulary`",
                field="idf_weights",
                received=f"{len(weights)} weights for {len(vocabulary)} terms",
            )
        start = self.token_start
        found = list(vocabulary[:start]) == self.specials
        front = [] if found else [sum(weights) / len(weights)] * start
        full = [*front, *map(float, weights)]
        if self.pad_to_max_tokens and self.max_tokens is not None:
            full += [0.0] * (self.max_tokens - len(full))
        return full

    def depth(self) -> int | None:
        """The width of `one_hot`/`multi_hot`/`count`/`tf_idf` outputs: `max_tokens` with
        `pad_to_max_tokens`, else the size of a given vocabulary; None when only an
        adapted vocabulary would tell."""
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if self.vocabulary is not None:
            return self.token_start + len(self.tokens(self.vocabulary))
        return None

    def need_depth(self) -> int:
        """`depth()`, or a ShapeError: the output width must be known before training."""
        depth = self.depth()
        if depth is None:
            raise ShapeError(
                f"output_mode '{self.output_mode}' makes the output as wide as the "
                "vocabulary, which is unknown until the layer is adapted to the data",
                field="output_mode",
                received=f"output_mode={self.output_mode}, no vocabulary, "
                f"pad_to_max_tokens={self.pad_to_max_tokens}",
                hint="Give `vocabulary`, or `max_tokens` with `pad_to_max_tokens: true`.",
            )
        return depth


def refuse_true(layer: Any, field: str, why: str, hint: str | None = None) -> None:
    """A boolean Keras argument that cannot be true here."""
    if getattr(layer, field):
        raise ShapeError(why, field=field, received=f"{field}=True", hint=hint)
