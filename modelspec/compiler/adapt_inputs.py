"""Which layers a fresh run adapts, and the check that it can: pure Python, part of
shape inference (so `check` reports it, positioned).

A layer with "adapted" variables (Normalization without `mean`, ...) learns them from
its input over the training split before step 1 (`runtime/adapt.py`). That input must
be the same before and after training, so it must be computed from the model inputs by
layers without weights — other adapted layers (adapted first) and weightless layers
such as Reshape or Rescaling. A layer with trainable or initialized weights in between
is refused, as is adapted state inside a wrapper (no adapter reaches it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelspec.schema.tensors import LayerShape, ShapeError


def is_adapted(shape: LayerShape) -> bool:
    """Whether the layer has state to adapt from the data."""
    return any(p.collection == "adapted" for p in shape.params)


class AdaptInputs:
    """Tracks, per tensor, the first layer with weights on its way from the model
    inputs (None: computed without weights)."""

    def __init__(self, inputs: Iterable[str]) -> None:
        self.weighted_by: dict[str, str | None] = dict.fromkeys(inputs)

    def check(self, node: Any, shape: LayerShape) -> None:
        """Raise ShapeError (on `inputs`) when `node` adapts but cannot."""
        if not is_adapted(shape):
            return
        layer = node.layer
        if not type(layer).adapter:
            raise ShapeError(
                f"{layer.type} would hold state adapted from the data inside it, which is "
                "only adapted for a layer written directly in the model",
                field="inputs",
                hint="Give the state in the spec (e.g. Normalization's mean and variance).",
            )
        if node.kind != "single":
            raise ShapeError("an adapted layer takes one input", field="inputs")
        culprit = self.weighted_by.get(node.refs[0])
        if culprit is not None:
            raise ShapeError(
                f"{layer.type} is adapted on the training data before step 1, so its input "
                f"must be computed from the model inputs by layers without weights; "
                f"'{culprit}' has weights",
                field="inputs",
                hint="Move the layer before the layers with weights, or give its state in "
                "the spec (Normalization: mean and variance; Discretization: "
                "bin_boundaries).",
            )

    def record(self, node: Any, refs: Iterable[str], shape: LayerShape) -> None:
        """Note how the node's outputs were computed."""
        upstream = next((c for r in node.refs if (c := self.weighted_by.get(r))), None)
        own = any(p.collection != "adapted" for p in shape.params)
        culprit = upstream or (node.name if own else None)
        for ref in refs:
            self.weighted_by[ref] = culprit


__all__ = ["AdaptInputs", "is_adapted"]
