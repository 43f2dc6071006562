"""Reference Keras layers for the few modelspec layer types that are Keras-team
vocabulary but not in `keras.layers` (they live in keras_hub, which needs TensorFlow
Text and so cannot be a test dependency here).

Each class reproduces the keras_hub layer's weights and call exactly (same weight
names, shapes, default initializer, broadcasting), written against public Keras 3 ops,
so the conformance harness can treat it like any other Keras layer.
"""

from __future__ import annotations

import keras
from keras import ops


class PositionEmbedding(keras.layers.Layer):
    """`keras_hub.layers.PositionEmbedding(sequence_length, initializer)`: a trainable
    (sequence_length, features) table; the call returns its first `steps` rows
    broadcast to the input's shape."""

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=[self.sequence_length, inputs_shape[-1]],
            initializer=self.initializer,
            trainable=True,
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        table = ops.slice(
            ops.convert_to_tensor(self.position_embeddings), (0, 0), (shape[-2], shape[-1])
        )
        return ops.broadcast_to(table, shape)


REFERENCE = {"PositionEmbedding": PositionEmbedding}
"""modelspec type name -> reference Keras layer class, for types outside keras.layers."""
