"""Regularization layers (NNX side of `schema/layers/regularization.py`)."""

from __future__ import annotations
