"""All layer specs: the family modules, and the discriminated union on `type:`.

Importing a family module defines (and so registers) its spec classes. FAMILIES is the
one central list, like `keras/src/layers/__init__.py`, and its order is the order of
the union (and of the type names a hint lists). The union `Layer`, LAYER_TYPES and
LAYER_CLASSES are generated from the registry, so a new layer type in an existing
family is its spec class, its NNX class and its conformance cases — no edit here or in
the JSON Schema.

Import rule: like all of `modelspec.schema`, pure Python — a family module imports
pydantic, `schema.tensors`, `layers.base`, `layers.calls` and `layers.shape_math`; the
NNX side is reached only through each class's `nnx` reference.
"""

from __future__ import annotations

import importlib

from modelspec.schema.layers.base import LAYER_REGISTRY, LayerSpec
from modelspec.schema.vocabulary import tagged_union

FAMILIES = (
    "core",
    "reshaping",
    "resizing",
    "conv",
    "pooling",
    "normalization",
    "recurrent",
    "attention",
    "merging",
    "activations",
    "regularization",
    "preprocessing",
    "features",
    "text",
)
"""The family modules of `modelspec.schema.layers`, in union order."""

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

LAYER_TYPES: dict[str, type[LayerSpec]] = dict(LAYER_REGISTRY)
"""Keras type name -> spec class."""
LAYER_CLASSES: tuple[type[LayerSpec], ...] = tuple(LAYER_TYPES.values())

Layer = tagged_union(LAYER_TYPES)
"""Any layer spec, chosen by its `type:`."""

# Wrappers (Bidirectional, TimeDistributed) hold a nested `Layer`: their field annotation
# names the union, which exists only now, so they are completed here.
for _cls in LAYER_CLASSES:
    if not _cls.__pydantic_complete__:
        _cls.model_rebuild(_types_namespace={"Layer": Layer})

__all__ = ["FAMILIES", "LAYER_CLASSES", "LAYER_TYPES", "Layer", "LayerSpec"]
