"""`decode_kind` rules for layers whose part in KV-cache generation depends on their
arguments (see `LayerSpec.decode`).

Generation runs the model on a few new positions at a time, so a layer may run there
only if each sequence position (axis 1 of a (batch, steps, ...) tensor) is computed
from that position alone. A layer acting along some axes (a normalization, a softmax,
a concatenation) passes when the sequence axis is not among them; a layer with a
weight that varies along the sequence axis (PReLU's alpha, an EinsumDense kernel
naming it) does not. Pure Python: these are assigned as `decode_kind` methods of the
spec classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

STEPS = 1
"""The sequence axis of a (batch, steps, ...) tensor."""

DecodeKind = Callable[[Any, int], "str | None"]


def _normalized(axes: int | list[int], rank: int) -> set[int]:
    """Keras's axis arguments (negative from the end) as non-negative axes."""
    given = [axes] if isinstance(axes, int) else list(axes)
    return {a + rank if a < 0 else a for a in given}


def along(field: str | None) -> DecodeKind:
    """`decode_kind` of a layer that acts along the axes its argument `field` names
    (None: the last axis, as Dense): positionwise when the sequence axis is not one of
    them. A `field` value of None (Normalization's `axis: null`: one scalar mean and
    variance) acts on no axis in particular, so it is positionwise too."""

    def decode_kind(self: Any, x_rank: int) -> str | None:
        axes = -1 if field is None else getattr(self, field)
        if axes is None:
            return "positionwise"
        return None if STEPS in _normalized(axes, x_rank) else "positionwise"

    decode_kind.__doc__ = (
        f"Positionwise unless `{field or 'the last axis'}` is the sequence axis (axis 1)."
    )
    return decode_kind


def activation_kind(self: Any, x_rank: int) -> str | None:
    """Element-wise activations are positionwise at any rank; softmax and log_softmax
    act along the last axis, which is the sequence axis of a (batch, steps) input."""
    if self.activation in ("softmax", "log_softmax") and x_rank <= 2:
        return None
    return "positionwise"


def shared_along_steps(self: Any, x_rank: int) -> str | None:
    """PReLU: one alpha per input element unless shared; positionwise only when alpha
    is shared along the sequence axis (`shared_axes` includes 1), else each position
    has its own alpha and the new positions would need to know theirs."""
    shared = self.shared_axes
    axes = set() if shared is None else _normalized(shared, x_rank)
    return "positionwise" if STEPS in axes else None


_PART = re.compile(r"^(\.\.\.)?([a-zA-Z]+)(\.\.\.)?$")


def einsum_kind(self: Any, x_rank: int) -> str | None:
    """EinsumDense: positionwise when the input's sequence axis passes straight to the
    output's axis 1 — hidden in a leading `...`, or a letter that is neither a kernel
    nor a bias axis and keeps its place in the output. Anything else (the letter
    contracted with the kernel, moved, or given a bias along it) mixes positions or
    depends on them."""
    equation = self.equation.replace(" ", "")
    try:
        operands, out = equation.split("->")
        xs, ws = operands.split(",")
    except ValueError:
        return None
    mx, mz = _PART.match(xs), _PART.match(out)
    if mx is None or mz is None:
        return None
    x_letters, z_letters = mx.group(2), mz.group(2)
    lead = x_rank - len(x_letters) if mx.group(1) else 0
    if lead > STEPS:  # the sequence axis is inside the leading `...`
        return "positionwise"
    index = STEPS - lead
    if index >= len(x_letters) or index >= len(z_letters):
        return None
    letter = x_letters[index]
    if letter in ws or letter in (self.bias_axes or "") or z_letters[index] != letter:
        return None
    return "positionwise"
