"""Layer type -> builder. A builder gets (layer spec, input type(s), LayerShape, key)
and returns an nnx Module whose variables follow LayerShape.params exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BUILDERS: dict[str, Callable[..., Any]] = {}


def builder(*types: str):
    def register(cls):
        for t in types:
            BUILDERS[t] = cls
        return cls

    return register
