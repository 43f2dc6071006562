"""Checking integer ids against the vocabulary of the layer that looks them up.

An `Embedding` given an id outside `[0, input_dim)` does not fail on JAX: the gather
clamps or fills, and the model trains on garbage without a word. So before step 1 the
ids fed to a model input that an Embedding reads directly are checked against its
`input_dim` (the smallest one, when several Embeddings read the input), for every kind
of source: token files, `.npz` arrays, CSV columns. The check is positioned at the
spec field naming the data and says which id is out of range and where.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from modelspec.runtime.data.raw import RawArray, RawSource, Reporter
from modelspec.schema.layers.core import Embedding


class IdBound(NamedTuple):
    """The ids a model input may hold: `[0, limit)`, and the layer that says so."""

    limit: int
    layer: str
    """E.g. "Embedding 'embed' (input_dim 256)"."""


def id_bounds(graph: Any) -> dict[str, IdBound]:
    """Model input name -> its `IdBound`, for the inputs an Embedding reads directly."""
    bounds: dict[str, IdBound] = {}
    for node in graph.nodes:
        if not isinstance(node.layer, Embedding) or node.kind != "single":
            continue
        (ref,) = node.refs
        if ref in graph.inputs and (ref not in bounds or node.layer.input_dim < bounds[ref][0]):
            dim = node.layer.input_dim
            bounds[ref] = IdBound(dim, f"Embedding {node.name!r} (input_dim {dim})")
    return bounds


def _first_outside(array: Any, limit: int) -> str:
    """Where the first id outside [0, limit) is: the array's own words when it has them
    (a token file names the token), else the sample."""
    locate = getattr(array, "first_outside", None)
    if locate is not None:
        return locate(0, limit) or "?"
    flat = np.asarray(array).reshape(len(array), -1)
    rows = np.flatnonzero(np.any((flat < 0) | (flat >= limit), axis=1))
    return f"sample {int(rows[0])}" if rows.size else "?"


def check_ids(
    raw: RawSource, name: str, item: RawArray, bound: IdBound, low: Any, high: Any, rep: Reporter
) -> bool:
    """Report (and return False) when the ids of `item`, ranging over [low, high], fall
    outside `bound`."""
    if low >= 0 and high < bound.limit:
        return True
    rep.error(
        item.path,
        f"{raw.label}: {item.what} holds ids from {low} to {high}, but model input "
        f"{name!r} is read by {bound.layer}, which takes ids in [0, {bound.limit}); "
        f"the first outside is {_first_outside(item.array, bound.limit)}",
        received=f"min {low}, max {high}",
        hint=f"Raise input_dim to at least {int(high) + 1}, or fix the data's ids."
        if low >= 0
        else "Ids are row numbers of the embedding table: they cannot be negative.",
    )
    return False
