"""ONNX lowerings of the regularization layers (`schema/layers/regularization.py`):
SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout,
ActivityRegularization — all the identity at inference (after Keras's float32
autocast); ActivityRegularization's penalty concerns only the training loss."""

from __future__ import annotations

from modelspec.compiler.layers.onnx.core import lower_identity

lower_regularization = lower_identity
