"""Write `samples.json`: a few of scikit-learn's bundled 8x8 digits for the web page.

The first image of each class 0-9, pixels as scikit-learn gives them (integers 0-16,
row-major, 64 values) -- the same values `modelspec train examples/digits/cnn.yaml`
trains on (the model's own Rescaling layer divides by 16). Run from anywhere:

    python examples/web/make_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent / "samples.json"


def samples() -> list[dict]:
    """One sample per class, the first in dataset order (deterministic, no randomness)."""
    digits = load_digits()
    chosen: list[dict] = []
    for label in range(10):
        index = int((digits.target == label).nonzero()[0][0])
        pixels = [int(v) for v in digits.data[index]]
        chosen.append({"index": index, "label": label, "pixels": pixels})
    return chosen


def main() -> None:
    # One sample per line: small, diffable, still plain JSON.
    lines = ",\n".join("  " + json.dumps(s, separators=(",", ":")) for s in samples())
    OUT.write_text("[\n" + lines + "\n]\n")
    print(f"Wrote {OUT}")


if __name__ == "__main__":
    main()
