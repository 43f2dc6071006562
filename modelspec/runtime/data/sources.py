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

from pathlib import Path
from typing import Any

import numpy as np

from modelspec.errors import choices_hint, did_you_mean, format_path, short_repr
from modelspec.runtime.data.npfiles import ArrayFileError, NpzArchive, file_kind, load_npy
from modelspec.runtime.data.raw import (
    Locate,
    RawArray,
    RawSource,
    Reader,
    Reporter,
    SpecPath,
    missing_file,
    resolve,
    single_input_output,
)
from modelspec.schema.data import NpySource, NpzSource, SklearnSource, SourceSpec
from modelspec.schema.tensors import TensorType
from modelspec.schema.vocabulary import load_reference

__all__ = ["Locate", "RawArray", "RawSource", "Reporter", "SpecPath", "describe", "read_source"]


def describe(source: Any, where: SpecPath) -> str:
    """The prefix naming a source in messages: `data.train (csv 'iris.csv')`."""
    detail = getattr(source, "name", None) or getattr(source, "path", None)
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
) -> RawSource:
    """Read `source`; arrays that could not be found or read are left out (and reported)."""
    raw = RawSource(describe(source, where), where)
    if not isinstance(source, SourceSpec):  # pragma: no cover - the schema admits no other
        raise TypeError(f"unknown data source {source!r}")
    reader: Reader = load_reference(source.reader)
    reader(
        source,
        raw,
        model_inputs=model_inputs,
        model_outputs=model_outputs,
        needed_outputs=needed_outputs,
        base_dir=base_dir,
        rep=rep,
    )
    return raw


def read_sklearn(
    source: SklearnSource,
    raw: RawSource,
    *,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
) -> None:
    """A toy dataset bundled with scikit-learn: features -> the input, target -> the output."""
    names = single_input_output(source, raw, model_inputs, model_outputs, rep)
    if names is None:
        return
    inp, out = names
    from sklearn import datasets  # slow to import: only when a spec uses it

    x, y = getattr(datasets, f"load_{source.name}")(return_X_y=True)
    raw.inputs[inp] = RawArray(np.asarray(x), "array 'data'", raw.where)
    raw.targets[out] = RawArray(np.asarray(y), "array 'target'", raw.where)


def _mapping(
    rep: Reporter,
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
            rep.error(
                (*raw.where, field_name, key),
                f"{raw.label}: {key!r} is not a model {kind}",
                received=short_repr(key),
                hint=choices_hint(key, list(model)),
            )
        else:
            plan[key] = ([array], (*raw.where, field_name, key))
    for name in wanted:
        if name not in plan:
            defaults = [name] + ([single_default] if len(model) == 1 else [])
            at = (*raw.where, field_name) if given else raw.where
            plan[name] = (list(dict.fromkeys(defaults)), at)
    return plan


def read_npz(
    source: NpzSource,
    raw: RawSource,
    *,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
) -> None:
    """Arrays of one `.npz` archive, found by the mapping or by the model's names."""
    file = resolve(base_dir, source.path)
    at_path = (*raw.where, "path")
    if missing_file(rep, at_path, raw.label, file):
        return
    try:
        if file_kind(file) == "npy":
            rep.error(
                at_path,
                f"{raw.label}: {str(file)!r} holds a single array (.npy), not an .npz archive",
                hint="Use `type: npy` with `inputs:`/`targets:` mapping names to .npy files.",
            )
            return
        archive = NpzArchive(file)
    except ArrayFileError as exc:
        rep.error(at_path, f"{raw.label}: {exc.message}", hint=exc.hint)
        return
    with archive:
        available = archive.names
        plans = [
            (
                "inputs",
                "input",
                raw.inputs,
                _mapping(rep, raw, source.inputs, "inputs", model_inputs, list(model_inputs), "x"),
            ),
            (
                "targets",
                "output",
                raw.targets,
                _mapping(rep, raw, source.targets, "targets", model_outputs, needed_outputs, "y"),
            ),
        ]
        for field_name, kind, dest, plan in plans:
            for model_name, (candidates, at) in plan.items():
                found = next((c for c in candidates if c in available), None)
                if found is None:
                    tried = " or ".join(repr(c) for c in candidates)
                    close = did_you_mean(candidates[0], available)
                    rep.error(
                        at,
                        f"{raw.label}: no array {tried} for model {kind} {model_name!r}",
                        received="arrays " + ", ".join(repr(a) for a in available),
                        hint=close or f"Map it: `{field_name}: {{{model_name}: <array name>}}`.",
                    )
                    continue
                try:
                    dest[model_name] = RawArray(archive.load(found), f"array {found!r}", at)
                except ArrayFileError as exc:
                    rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)


def read_npy(
    source: NpySource,
    raw: RawSource,
    *,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
) -> None:
    """One memory-mapped `.npy` file per model input and needed output."""
    groups = [
        ("inputs", "input", source.inputs, model_inputs, list(model_inputs), raw.inputs),
        ("targets", "output", source.targets, model_outputs, needed_outputs, raw.targets),
    ]
    for field_name, kind, given, model, wanted, dest in groups:
        for name in wanted:
            if name not in given:
                rep.error(
                    (*raw.where, field_name),
                    f"{raw.label}: no file given for model {kind} {name!r}",
                    received=list(given),
                    hint=f"Add `{name}: <file.npy>` to {format_path((*raw.where, field_name))}.",
                )
        for key, name in given.items():
            at = (*raw.where, field_name, key)
            if key not in model:
                rep.error(
                    at,
                    f"{raw.label}: {key!r} is not a model {kind}",
                    received=short_repr(key),
                    hint=choices_hint(key, list(model)),
                )
                continue
            file = resolve(base_dir, name)
            if missing_file(rep, at, raw.label, file):
                continue
            try:
                if file_kind(file) == "npz":
                    rep.error(
                        at,
                        f"{raw.label}: {name!r} is an .npz archive, not an .npy file",
                        hint="Use `type: npz` for archives.",
                    )
                    continue
                array = load_npy(file, f"file {name!r}")
            except ArrayFileError as exc:
                rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)
                continue
            dest[key] = RawArray(array, f"file {name!r}", at)
