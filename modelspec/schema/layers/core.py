"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Rescaling, Embedding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.common import Activation as ActivationFn
from modelspec.schema.common import Initializer, LayerBase


class Dense(LayerBase):
    """Densely connected layer: `activation(inputs @ kernel + bias)` on the last axis."""

    type: Literal["Dense"]
    units: PositiveInt
    """Dimensionality of the output space."""
    activation: ActivationFn | None = None
    """Activation applied to the output (none by default)."""
    use_bias: bool = True
    """Whether to add a bias vector."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""


class Activation(LayerBase):
    """Applies an activation function."""

    type: Literal["Activation"]
    activation: ActivationFn
    """Activation function name (Keras name)."""


class Dropout(LayerBase):
    """Randomly zeroes a fraction `rate` of inputs in training, scaling the rest by
    1/(1-rate); identity at inference."""

    type: Literal["Dropout"]
    rate: UnitInterval
    """Fraction of the inputs to drop, in [0, 1)."""
    noise_shape: list[PositiveInt | None] | None = None
    """Shape of the binary mask (batch axis included), e.g. `[null, 1, null]` to share
    the mask across timesteps. Default: the input shape."""


class Flatten(LayerBase):
    """Flattens all non-batch axes into one."""

    type: Literal["Flatten"]


class Reshape(LayerBase):
    """Reshapes the non-batch axes to `target_shape` (one entry may be -1)."""

    type: Literal["Reshape"]
    target_shape: list[int] = Field(min_length=1)
    """Target shape without the batch axis; one entry may be -1 (inferred)."""


class Rescaling(LayerBase):
    """`inputs * scale + offset` (e.g. scale: 0.00392 to map pixels to [0, 1])."""

    type: Literal["Rescaling"]
    scale: float
    """Multiplier."""
    offset: float = 0.0
    """Added after scaling."""


class Embedding(LayerBase):
    """Turns integer indices in [0, input_dim) into dense vectors of size output_dim."""

    type: Literal["Embedding"]
    input_dim: PositiveInt
    """Vocabulary size: the largest index + 1."""
    output_dim: PositiveInt
    """Dimension of the embedding vectors."""
    embeddings_initializer: Initializer = "uniform"
    """Initializer of the embedding matrix (Keras default: uniform in [-0.05, 0.05])."""
