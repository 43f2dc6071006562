"""Image preprocessing and augmentation layers (NNX side of
`schema/layers/preprocessing.py`)."""

from __future__ import annotations
