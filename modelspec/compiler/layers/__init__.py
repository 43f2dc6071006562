"""Flax NNX layers, one module per layer family (the NNX side of `schema/layers/`).

There is no registry here: each spec class names its NNX class in its `nnx` class
variable ("modelspec.compiler.layers.core:Dense"), and `nnx_class` imports it when a
model is built, so `check` and `summary` never import a family module (or JAX).

Import rule: these modules import JAX/Flax, `modelspec.schema` and the compiler's
`sharding.constraints`; nothing in the compiler's pure-Python part imports them.
"""

from __future__ import annotations

import functools

from modelspec.schema.layers import LayerSpec
from modelspec.schema.vocabulary import load_reference


@functools.cache
def nnx_class(spec_class: type[LayerSpec]) -> type:
    """The NNX class that builds layers of `spec_class` (its `nnx` reference)."""
    try:
        return load_reference(spec_class.nnx)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(
            f"{spec_class.__name__}.nnx = {spec_class.nnx!r} does not name a class: {exc}"
        ) from exc


__all__ = ["nnx_class"]
