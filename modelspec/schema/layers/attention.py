"""Attention layers."""

from __future__ import annotations

from typing import Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.common import Initializer, LayerBase


class MultiHeadAttention(LayerBase):
    """Multi-head scaled dot-product attention (Keras `MultiHeadAttention`).

    Call arguments come from `inputs`: `{query: a, value: b}` (key defaults to value),
    `{query: a, value: b, key: c}`, or a list `[query, value(, key)]`; a single name
    means self-attention."""

    type: Literal["MultiHeadAttention"]
    num_heads: PositiveInt
    """Number of attention heads."""
    key_dim: PositiveInt
    """Size of each head for query and key."""
    value_dim: PositiveInt | None = None
    """Size of each head for value; default: key_dim."""
    dropout: UnitInterval = 0.0
    """Dropout on the attention probabilities (training only)."""
    use_bias: bool = True
    """Whether the projections have biases."""
    output_shape: PositiveInt | None = None
    """Size of the output's last axis; default: the query's last axis."""
    use_causal_mask: bool = False
    """Mask future positions (a Keras call argument, fixed per layer here)."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the projection kernels."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the projection biases."""
