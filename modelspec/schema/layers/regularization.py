"""Regularization layers (Keras's `keras/src/layers/regularization/`): spatial dropout,
Gaussian noise and dropout, alpha dropout, activity regularization. Dropout itself is in
`core` with the other basic layers."""

from __future__ import annotations
