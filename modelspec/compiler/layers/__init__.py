"""Flax NNX builders, one module per layer family, registered by Keras type name."""

from modelspec.compiler.layers import core  # noqa: F401
from modelspec.compiler.layers.registry import BUILDERS

for _family in ("conv", "pooling", "normalization", "recurrent", "attention", "merging"):
    try:
        __import__(f"modelspec.compiler.layers.{_family}")
    except ModuleNotFoundError as exc:  # families land one by one; absent ones are reported
        if exc.name != f"modelspec.compiler.layers.{_family}":
            raise

__all__ = ["BUILDERS"]
