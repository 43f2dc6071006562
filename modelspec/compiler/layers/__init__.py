"""Flax NNX builders, one module per layer family, registered by Keras type name."""

from modelspec.compiler.layers import (  # noqa: F401  (registration on import)
    attention,
    conv,
    core,
    merging,
    normalization,
    pooling,
    recurrent,
)
from modelspec.compiler.layers.registry import BUILDERS

__all__ = ["BUILDERS"]
