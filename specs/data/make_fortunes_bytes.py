"""Rebuild `fortunes_bytes.npy`, the bundled byte-level token corpus of the GPT specs.

The 951 fortune texts of `examples/fortunes/data/<category>/<nnnn>.txt`, in sorted path
order, are tokenized at the byte level (token id = byte value, vocabulary 256: no
tokenizer, nothing downloaded, the same ids on every machine): each text's UTF-8 bytes
followed by one NUL byte (id 0, which no text contains) as its end-of-text token, all
concatenated into one uint8 array. Run from anywhere:

    python specs/data/make_fortunes_bytes.py

The texts are BSD fortune(6) cookies; their licence (the BSD copyright of fortune(6))
is in `examples/fortunes/LICENSE` and applies to the token file as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXTS = HERE.parents[1] / "examples" / "fortunes" / "data"
OUT = HERE / "fortunes_bytes.npy"
END_OF_TEXT = 0
"""The token closing every text (the NUL byte, never in a text)."""


def fortune_bytes(texts: Path = TEXTS) -> np.ndarray:
    """The corpus as uint8 token ids (see the module doc)."""
    pieces = []
    for path in sorted(texts.glob("*/*.txt")):
        data = path.read_bytes()
        if END_OF_TEXT in data:
            raise ValueError(f"{path} contains a NUL byte, the end-of-text token")
        pieces.append(np.frombuffer(data, dtype=np.uint8))
        pieces.append(np.array([END_OF_TEXT], dtype=np.uint8))
    return np.concatenate(pieces)


if __name__ == "__main__":
    tokens = fortune_bytes()
    np.save(OUT, tokens)
    print(f"wrote {OUT} ({len(tokens)} tokens)")
