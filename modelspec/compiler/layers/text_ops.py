"""TextVectorization's tokenizer, as TensorFlow's string ops compute it (Keras's
`TextVectorization._preprocess`), on Python strings. NumPy-free and JAX-free.

- `lower`: `tf.strings.lower` without an encoding, which is what Keras calls: ASCII
  letters only (absl's `AsciiStrToLower`), so "ÜBER" becomes "Über".
- `strip_punctuation`: Keras's regex `[!"#$%&()\\*\\+,-\\./:;<=>?@\\[\\\\\\]^_`{|}~\\']`
  replaced by "" (RE2 there, `re` here: the same ASCII class).
- `whitespace` split: `tf.strings.split` without `sep`, tokens between runs of ASCII
  whitespace (space, \\t, \\n, \\v, \\f, \\r; not Python's Unicode whitespace), no
  empty tokens.
- `character` split: `tf.strings.unicode_split(..., "UTF-8")`, one token per code point.
- n-grams: `tf.strings.ngrams(widths, separator=" ")` per text, widths in the given
  order, a width longer than the text giving none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

STRIP_REGEX = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
"""Keras's `DEFAULT_STRIP_REGEX` (TextVectorization's punctuation)."""
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")
"""A run of non-whitespace, with absl's ASCII notion of whitespace."""


def standardize(text: str, mode: str | None) -> str:
    """Keras's `standardize` modes on one text."""
    if mode in ("lower", "lower_and_strip_punctuation"):
        text = text.translate(_ASCII_LOWER)
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = STRIP_REGEX.sub("", text)
    return text


def split(text: str, mode: str | None) -> list[str]:
    """Keras's `split` modes on one text (null: the text is its only token)."""
    if mode == "whitespace":
        return _TOKEN.findall(text)
    if mode == "character":
        return list(text)
    return [text]


def ngrams(tokens: Sequence[str], widths: Sequence[int]) -> list[str]:
    """`tf.strings.ngrams` of one text's tokens, unpadded, joined by a space."""
    out: list[str] = []
    for width in widths:
        out += [" ".join(tokens[i : i + width]) for i in range(len(tokens) - width + 1)]
    return out


def tokenize(
    texts: Sequence[str],
    standardize_mode: str | None,
    split_mode: str | None,
    widths: Sequence[int] | None,
) -> list[list[str]]:
    """The tokens of each text, in order: standardize, split, n-grams."""
    rows = [split(standardize(t, standardize_mode), split_mode) for t in texts]
    if widths is not None:
        rows = [ngrams(r, widths) for r in rows]
    return rows
