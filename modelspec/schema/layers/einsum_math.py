"""Einsum shape rules shared by EinsumDense and the attention layers. Pure Python.

`analyze_einsum` is Keras's `_analyze_einsum_string` (keras/src/layers/core/
einsum_dense.py) as a checker: the same three equation forms, the same partial
`output_shape` (batch axis and ellipsis axes left out), the same kernel and bias shapes
and fan axes, but every configuration Keras would refuse (at build time, or only when
called) is a ShapeError on the argument at fault instead.

`attention_equations` is Keras's `_build_attention_equation` (multi_head_attention.py):
the einsum strings that give MultiHeadAttention's scores their layout, which an
`attention_mask` must broadcast to.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from modelspec.schema.tensors import Dim, ShapeError, format_shape

_FORMS = (
    ("plain", re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)")),
    ("left", re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)")),
    ("right", re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.")),
)


@dataclass(frozen=True)
class EinsumPlan:
    """What an EinsumDense equation means for one input shape."""

    kernel_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    output_shape: tuple[Dim, ...]
    """The full output shape, batch axis first; axes shared with the input take the
    input's size where `output_shape` left them null."""
    fan_in_axes: tuple[int, ...]
    """Kernel axes named in the input only (Keras's `input_axes` for initializer fans)."""
    fan_out_axes: tuple[int, ...]
    """Kernel axes named in the output (Keras's `output_axes`)."""


def _equation_error(message: str, equation: str, hint: str | None = None) -> ShapeError:
    return ShapeError(message, field="equation", received=f"equation={equation!r}", hint=hint)


def _split(equation: str) -> tuple[str, str, str, str]:
    """(form, input part, kernel part, output part) of an EinsumDense equation."""
    for form, pattern in _FORMS:
        match = pattern.fullmatch(equation)
        if match:
            parts = match.groups()
            for part in parts:
                repeated = sorted({c for c in part if part.count(c) > 1})
                if repeated:
                    raise _equation_error(
                        f"axis '{repeated[0]}' appears twice in '{part}'", equation
                    )
            return (form, *parts)
    raise _equation_error(
        "equations must have the form `ab,bc->ac`, `...ab,bc->...ac` or `ab...,bc->ac...`"
        " (input, kernel -> output)",
        equation,
    )


def analyze_einsum(
    equation: str,
    bias_axes: str | None,
    input_shape: tuple[Dim, ...],
    output_shape: int | list[int | None],
) -> EinsumPlan:
    """Kernel, bias and output shapes of `EinsumDense(equation, output_shape, bias_axes)`
    on an input of `input_shape` (batch axis first), with Keras's rules."""
    form, xs, ws, zs = _split(equation)
    rank = len(input_shape)
    elided = rank - len(xs)
    if (form == "plain" and elided != 0) or elided < 0:
        raise _equation_error(
            f"the input part '{xs}' names {len(xs)} axes, but the input "
            f"{format_shape(input_shape)} has {rank} (batch axis included)",
            equation,
            None if form != "plain" else "Use `...` for axes the equation does not name.",
        )
    # The batch axis is hidden in a leading ellipsis, or it is the input's first letter,
    # which must then start the output and stay out of the kernel (Keras puts the input's
    # batch size first in the output and cannot shape a kernel by it).
    lead = elided if form == "left" else 0
    if not lead:
        batch = xs[0]
        if zs[0] != batch or batch in ws:
            raise _equation_error(
                f"the first input axis '{batch}' is the batch axis: it must start the "
                f"output '{zs}' and must not be a kernel axis ('{ws}')",
                equation,
            )
    partial = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    want = len(zs) - (0 if lead else 1)
    if len(partial) != want:
        raise ShapeError(
            f"needs {want} entries, one per output axis of '{zs}' after the batch axis "
            "(axes covered by `...` are left out)",
            field="output_shape",
            received=f"output_shape={output_shape}",
        )
    trailing = list(input_shape[rank - elided :]) if form == "right" else []
    given = list(input_shape[:lead] if lead else input_shape[:1]) + partial + trailing
    z_pos = {c: lead + i for i, c in enumerate(zs)}
    x_size = {c: input_shape[(lead if form == "left" else 0) + i] for i, c in enumerate(xs)}

    full = list(given)
    for c, size in x_size.items():
        if c not in z_pos or (not lead and c == xs[0]):
            continue
        said = given[z_pos[c]]
        if said is not None and said != size:
            raise ShapeError(
                f"output axis '{c}' is shared with the input, whose size there is "
                f"{'unknown' if size is None else size}, but output_shape gives {said}",
                field="output_shape",
                received=f"output_shape={output_shape}",
                hint="Write null for axes the input decides.",
            )
        full[z_pos[c]] = size
    for c in zs:
        if c not in x_size and c not in ws:
            raise _equation_error(
                f"output axis '{c}' is neither in the input '{xs}' nor in the kernel '{ws}'",
                equation,
            )

    kernel: list[int] = []
    fan_in: list[int] = []
    fan_out: list[int] = []
    for i, c in enumerate(ws):
        if c in z_pos:
            size, fans = given[z_pos[c]], fan_out
            if size is None:
                raise ShapeError(
                    f"output_shape must give the size of axis '{c}': the kernel is shaped by it",
                    field="output_shape",
                    received=f"output_shape={output_shape}",
                )
        elif c in x_size:
            size, fans = x_size[c], fan_in
            if size is None:
                raise ShapeError(
                    f"the input axis '{c}' must have a known size: the kernel is shaped by it",
                    field="inputs",
                    received=format_shape(input_shape),
                )
        else:
            raise _equation_error(
                f"kernel axis '{c}' is neither in the input '{xs}' nor in the output '{zs}'",
                equation,
            )
        kernel.append(size)
        fans.append(i)

    bias = None if bias_axes is None else _bias_shape(bias_axes, zs, given, z_pos, elided, form)
    return EinsumPlan(tuple(kernel), bias, tuple(full), tuple(fan_in), tuple(fan_out))


def _bias_shape(
    bias_axes: str, zs: str, given: list[Dim], z_pos: dict[str, int], elided: int, form: str
) -> tuple[int, ...]:
    """Keras's bias: from the first bias axis of the output to its end, the bias axes'
    sizes and 1 elsewhere (and for every trailing `...` axis), so it broadcasts."""
    for c in bias_axes:
        if c not in zs:
            raise ShapeError(
                f"bias axis '{c}' is not an axis of the output '{zs}'",
                field="bias_axes",
                received=f"bias_axes={bias_axes!r}",
            )
    first = min(zs.index(c) for c in bias_axes)
    shape: list[int] = []
    for c in zs[first:]:
        size = given[z_pos[c]] if c in bias_axes else 1
        if size is None:
            raise ShapeError(
                f"bias axis '{c}' needs a known size in output_shape",
                field="bias_axes",
                received=f"bias_axes={bias_axes!r}",
            )
        shape.append(size)
    return tuple(shape + [1] * (elided if form == "right" else 0))


def attention_equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str, int]:
    """Keras's `_build_attention_equation`: for projected tensors of `rank`
    (batch, ..., heads, channels) attending over `axes`, the (key, query) -> scores and
    (scores, value) -> output einsums, and the scores' rank. Scores are laid out as
    (the other axes and heads, query attention axes, key attention axes)."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join(
        [target[i] for i in batch_dims] + [target[i] for i in axes] + [source[i] for i in axes]
    )
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)
