"""Image preprocessing and augmentation layers that live inside the model (Keras's
`keras/src/layers/preprocessing/image_preprocessing/`): random transforms draw from the
spec's seed in training and are the identity at inference."""

from __future__ import annotations
