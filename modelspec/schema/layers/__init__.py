"""All layer specs, one discriminated union on `type:` (the Keras class name)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelspec.schema.layers.attention import MultiHeadAttention
from modelspec.schema.layers.conv import Conv1D, Conv2D
from modelspec.schema.layers.core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Rescaling,
    Reshape,
)
from modelspec.schema.layers.merging import Add, Concatenate, Multiply
from modelspec.schema.layers.normalization import BatchNormalization, LayerNormalization
from modelspec.schema.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    MaxPooling2D,
)
from modelspec.schema.layers.recurrent import GRU, LSTM

LAYER_CLASSES = (
    Dense,
    Activation,
    Dropout,
    Flatten,
    Reshape,
    Rescaling,
    Embedding,
    Conv1D,
    Conv2D,
    MaxPooling2D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    BatchNormalization,
    LayerNormalization,
    LSTM,
    GRU,
    MultiHeadAttention,
    Add,
    Concatenate,
    Multiply,
)
LAYER_TYPES: dict[str, type] = {cls.__name__: cls for cls in LAYER_CLASSES}

Layer = Annotated[
    Dense
    | Activation
    | Dropout
    | Flatten
    | Reshape
    | Rescaling
    | Embedding
    | Conv1D
    | Conv2D
    | MaxPooling2D
    | AveragePooling2D
    | GlobalAveragePooling1D
    | GlobalAveragePooling2D
    | BatchNormalization
    | LayerNormalization
    | LSTM
    | GRU
    | MultiHeadAttention
    | Add
    | Concatenate
    | Multiply,
    Field(discriminator="type"),
]

__all__ = ["LAYER_CLASSES", "LAYER_TYPES", "Layer", *LAYER_TYPES]
