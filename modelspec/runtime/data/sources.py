"""Readers for each kind of data source, turning files into named raw arrays.

Readers do no checking against the model beyond *which* arrays feed which input and
output; they report what they cannot find or read to a `Reporter` and go on, so one run
of `load_data` shows every problem at once. `.npy` files and uncompressed `.npz` members
are memory-mapped, and `.npz` archives read only the arrays the model needs: large data
is never loaded whole here. Compressed `.npz` members cannot be mapped; they are read
into memory only up to a cap (`npfiles.MAX_DECOMPRESSED_BYTES`). The CSV reader lives in
`csv_source`, the shared types in `raw`. Which reader runs is the source spec's own
`reader` class variable, so `read_source` has no branch per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from modelspec.errors import did_you_mean, format_path
from modelspec.runtime.data.npfiles import ArrayFileError, NpzArchive, file_kind, load_npy
from modelspec.runtime.data.raw import (
    Locate,
    RawArray,
    RawSource,
    ReadContext,
    Reader,
    Reporter,
    SpecPath,
)
from modelspec.schema.data import NpySource, NpzSource, SklearnSource, SourceSpec
from modelspec.schema.tensors import TensorType
from modelspec.schema.vocabulary import load_reference

__all__ = ["Locate", "RawArray", "RawSource", "Reporter", "SpecPath", "describe", "read_source"]


def describe(source: Any, where: SpecPath) -> str:
    """The prefix naming a source in messages: `data.train (csv 'iris.csv')`."""
    detail = (
        getattr(source, "name", None)
        or getattr(source, "path", None)
        or getattr(source, "directory", None)
    )
    kind = f"{source.type} {detail!r}" if detail else source.type
    return f"{format_path(where)} ({kind})"


def read_source(
    source: Any,
    *,
    where: SpecPath,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
    learned: dict[Any, Any] | None = None,
) -> RawSource:
    """Read `source`; arrays that could not be found or read are left out (and reported).
    `learned` is shared by the sources of one dataset (see `ReadContext.learned`)."""
    raw = RawSource(describe(source, where), where)
    if not isinstance(source, SourceSpec):  # pragma: no cover - the schema admits no other
        raise TypeError(f"unknown data source {source!r}")
    reader: Reader = load_reference(source.reader)
    shared = learned if learned is not None else {}
    reader(
        source,
        raw,
        ReadContext(model_inputs, model_outputs, needed_outputs, base_dir, rep, shared),
    )
    return raw


_OTHER_KIND = {
    "npz": (
        "{file!r} holds a single array (.npy), not an .npz archive",
        "Use `type: npy` with `inputs:`/`targets:` mapping names to .npy files.",
    ),
    "npy": ("{name!r} is an .npz archive, not an .npy file", "Use `type: npz` for archives."),
}
"""Per expected NumPy format: the message (and hint) when the file is the other one."""

T = TypeVar("T")


def _open(
    ctx: ReadContext,
    raw: RawSource,
    name: str,
    at: SpecPath,
    expect: Literal["npy", "npz"],
    opener: Callable[[Path], T],
) -> T | None:
    """`opener(file)` for the file `name` when it is the `expect`ed NumPy format; None,
    reported at `at`, when it is missing, the other format or unreadable. Both NumPy
    readers go through here, so they check (and word) these cases alike."""
    file = ctx.file(raw, name, at)
    if file is None:
        return None
    try:
        if file_kind(file) != expect:
            message, hint = _OTHER_KIND[expect]
            ctx.rep.error(
                at, f"{raw.label}: " + message.format(file=str(file), name=name), hint=hint
            )
            return None
        return opener(file)
    except ArrayFileError as exc:
        ctx.rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)
        return None


def read_sklearn(source: SklearnSource, raw: RawSource, ctx: ReadContext) -> None:
    """A toy dataset bundled with scikit-learn: features -> the input, target -> the output."""
    names = ctx.single_input_output(source, raw)
    if names is None:
        return
    inp, out = names
    from sklearn import datasets  # slow to import: only when a spec uses it

    x, y = getattr(datasets, f"load_{source.name}")(return_X_y=True)
    raw.inputs[inp] = RawArray(np.asarray(x), "array 'data'", raw.where)
    raw.targets[out] = RawArray(np.asarray(y), "array 'target'", raw.where)


def _mapping(
    ctx: ReadContext,
    raw: RawSource,
    given: dict[str, str] | None,
    field_name: str,
    model: dict[str, TensorType],
    wanted: list[str],
    single_default: str,
) -> dict[str, tuple[list[str], SpecPath]]:
    """Model name -> (candidate array names, spec path), for the names in `wanted`
    plus every one mapped explicitly; mapping keys that are not model names are reported."""
    kind = "input" if field_name == "inputs" else "output"
    plan: dict[str, tuple[list[str], SpecPath]] = {}
    for key, array in (given or {}).items():
        if key not in model:
            ctx.not_a_model_name(raw, (*raw.where, field_name, key), key, kind, model)
        else:
            plan[key] = ([array], (*raw.where, field_name, key))
    for name in wanted:
        if name not in plan:
            defaults = [name] + ([single_default] if len(model) == 1 else [])
            at = (*raw.where, field_name) if given else raw.where
            plan[name] = (list(dict.fromkeys(defaults)), at)
    return plan


def read_npz(source: NpzSource, raw: RawSource, ctx: ReadContext) -> None:
    """Arrays of one `.npz` archive, found by the mapping or by the model's names."""
    archive = _open(ctx, raw, source.path, (*raw.where, "path"), "npz", NpzArchive)
    if archive is None:
        return
    inputs, outputs = ctx.model_inputs, ctx.model_outputs
    with archive:
        available = archive.names
        plans = [
            (
                "inputs",
                "input",
                raw.inputs,
                _mapping(ctx, raw, source.inputs, "inputs", inputs, list(inputs), "x"),
            ),
            (
                "targets",
                "output",
                raw.targets,
                _mapping(ctx, raw, source.targets, "targets", outputs, ctx.needed_outputs, "y"),
            ),
        ]
        for field_name, kind, dest, plan in plans:
            for model_name, (candidates, at) in plan.items():
                found = next((c for c in candidates if c in available), None)
                if found is None:
                    tried = " or ".join(repr(c) for c in candidates)
                    close = did_you_mean(candidates[0], available)
                    ctx.rep.error(
                        at,
                        f"{raw.label}: no array {tried} for model {kind} {model_name!r}",
                        received="arrays " + ", ".join(repr(a) for a in available),
                        hint=close or f"Map it: `{field_name}: {{{model_name}: <array name>}}`.",
                    )
                    continue
                try:
                    dest[model_name] = RawArray(archive.load(found), f"array {found!r}", at)
                except ArrayFileError as exc:
                    ctx.rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)


def read_npy(source: NpySource, raw: RawSource, ctx: ReadContext) -> None:
    """One memory-mapped `.npy` file per model input and needed output."""
    inputs, outputs = ctx.model_inputs, ctx.model_outputs
    groups = [
        ("inputs", "input", source.inputs, inputs, list(inputs), raw.inputs),
        ("targets", "output", source.targets, outputs, ctx.needed_outputs, raw.targets),
    ]
    for field_name, kind, given, model, wanted, dest in groups:
        for name in wanted:
            if name not in given:
                ctx.rep.error(
                    (*raw.where, field_name),
                    f"{raw.label}: no file given for model {kind} {name!r}",
                    received=list(given),
                    hint=f"Add `{name}: <file.npy>` to {format_path((*raw.where, field_name))}.",
                )
        for key, name in given.items():
            at = (*raw.where, field_name, key)
            if key not in model:
                ctx.not_a_model_name(raw, at, key, kind, model)
                continue
            array = _open(ctx, raw, name, at, "npy", partial(load_npy, what=f"file {name!r}"))
            if array is not None:
                dest[key] = RawArray(array, f"file {name!r}", at)
