"""Reshaping layers: Flatten, Reshape (NNX side of `schema/layers/reshaping.py`).

Reshape takes its target from the inferred output shape, where `-1` is already
resolved; only a still-unknown size (a variable-length input) is left to `-1`.
"""

from __future__ import annotations

from modelspec.compiler.layers.base import Layer


class Flatten(Layer):
    def __init__(self, spec, x, shape, key):
        pass

    def __call__(self, x, *, training=False, rngs=None):
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    def __init__(self, spec, x, shape, key):
        self.target = tuple(d if d is not None else -1 for d in shape.output.shape[1:])

    def __call__(self, x, *, training=False, rngs=None):
        return x.reshape(x.shape[0], *self.target)
