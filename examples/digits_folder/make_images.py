"""Regenerate `images/`: scikit-learn's bundled 8x8 digits as 32x32 PNG files in one
folder per class (`images/<digit>/<index>.png`), deterministically (no download).

    python examples/digits_folder/make_images.py

Each 8x8 image (values 0..16) is scaled to 0..255 and upscaled 4x by pixel repetition,
so the files are small (about 0.7 MB for all 1797) and always byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main(out: Path = Path(__file__).resolve().parent / "images") -> None:
    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for i, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        folder = out / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        big = np.kron(image, np.ones((4, 4), dtype=np.uint8))
        Image.fromarray(big).save(folder / f"{i:04d}.png", optimize=True)


if __name__ == "__main__":
    main()
