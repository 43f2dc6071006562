"""Repeated blocks as layer stacks: `scan` and `remat` (rematerialization) options.

A block use with `repeat: N` expands into N copies of the block's layers (see
`compiler/blocks.py`); the expansion also records one `model.stacks` entry per use, so
the expanded spec (what `spec.yaml` in a run directory holds) still says which layers
form the copies and how to compile them. Scanned, the N copies run as one
`jax.lax.scan` over parameters stacked on a leading `layers` axis: compile time no longer
grows with N. Rematerialized, each copy's activations are recomputed in the backward
pass instead of kept (the `jax.checkpoint` policies below)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt, SpecModel

RematPolicy = Literal[
    "none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable", "nothing_saveable"
]
"""What a rematerialized block keeps from its forward pass for the backward pass:
`none` keeps everything (no recomputation: fastest, most memory); `full` (alias
`nothing_saveable`) keeps only the block's input and recomputes the rest (least memory,
about one more forward pass of time); `dots_saveable` keeps the results of matrix
multiplications and recomputes the cheap element-wise work between them (layer norms,
activations, softmax); `dots_with_no_batch_dims_saveable` keeps only the matrix
multiplications without batch dimensions (the projections, not attention's batched
score and context products)."""

SCAN_AUTO_MIN = 4
"""`scan` left unset scans a use repeated at least this many times (where it can)."""


class StackSpec(SpecModel):
    """How the copies of one repeated block use compile (written by block expansion:
    `name`/`repeat` identify the copies, `scan`/`remat` are the use's options)."""

    name: str = Field(min_length=1)
    """The block use's name: its copies' layers are named `<name>/<i>/<layer>`."""
    repeat: PositiveInt
    """How many copies."""
    scan: bool | None = None
    """Run the copies as one `jax.lax.scan` over stacked parameters. Default: yes when
    `repeat` ≥ 4 and the copies allow it (identical layers and arguments, a single
    chained input, no masks, regularizers, constraints or frozen layers inside)."""
    remat: RematPolicy | None = None
    """Rematerialization of each copy (default: `model.remat`)."""
