"""Readers for each kind of data source, turning files into named raw arrays.

Readers do no checking against the model beyond *which* arrays feed which input and
output; they report what they cannot find or read to a `Reporter` and go on, so one run
of `load_data` shows every problem at once. `.npy` files are memory-mapped and `.npz`
archives read only the arrays the model needs: large data is never loaded whole here.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.compiler.types import TensorType
from modelspec.errors import Diagnostic, choices_hint, did_you_mean, format_path, short_repr
from modelspec.schema.data import CsvSource, NpySource, NpzSource, SklearnSource

SpecPath = tuple[str | int, ...]
Locate = Callable[[SpecPath], tuple[str, int, int]]


@dataclass
class Reporter:
    """Collects positioned diagnostics; `locate` maps a spec path to (file, line, col)."""

    locate: Locate
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(
        self, path: SpecPath, message: str, *, received: Any = None, hint: str | None = None
    ) -> None:
        file, line, col = self.locate(path)
        shown = received if received is None or isinstance(received, str) else short_repr(received)
        self.diagnostics.append(
            Diagnostic(file, line, col, format_path(path), message, shown, hint)
        )


@dataclass
class RawArray:
    """One array as read from a source, with how the user knows it and where it is set."""

    array: np.ndarray
    what: str
    """The array in the user's terms: "array 'images'", "file 'x.npy'", "column 'y'"."""
    path: SpecPath
    """Spec path that diagnostics about this array point at."""


@dataclass
class RawSource:
    """Everything read from one source: arrays per model input and per model output."""

    label: str
    """E.g. "data.train (npz 'x.npz')", the prefix of every message about it."""
    where: SpecPath
    inputs: dict[str, RawArray] = field(default_factory=dict)
    targets: dict[str, RawArray] = field(default_factory=dict)


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
    if isinstance(source, SklearnSource | CsvSource):
        if len(model_inputs) != 1 or len(model_outputs) != 1:
            rep.error(
                where,
                f"{raw.label}: a {source.type} source feeds a model with one input and one "
                f"output, but the model has inputs {list(model_inputs)} and outputs "
                f"{list(model_outputs)}",
                hint="Use an npz or npy source, which maps arrays to inputs and outputs by name.",
            )
            return raw
        (inp,), (out,) = model_inputs, model_outputs
        if isinstance(source, SklearnSource):
            _read_sklearn(source, raw, inp, out)
        else:
            _read_csv(source, raw, inp, out, base_dir, rep)
    elif isinstance(source, NpzSource):
        _read_npz(source, raw, model_inputs, model_outputs, needed_outputs, base_dir, rep)
    elif isinstance(source, NpySource):
        _read_npy(source, raw, model_inputs, model_outputs, needed_outputs, base_dir, rep)
    else:  # pragma: no cover - the schema admits no other source
        raise TypeError(f"unknown data source {source!r}")
    return raw


def _read_sklearn(source: SklearnSource, raw: RawSource, inp: str, out: str) -> None:
    from sklearn import datasets  # slow to import: only when a spec uses it

    x, y = getattr(datasets, f"load_{source.name}")(return_X_y=True)
    raw.inputs[inp] = RawArray(np.asarray(x), "array 'data'", raw.where)
    raw.targets[out] = RawArray(np.asarray(y), "array 'target'", raw.where)


def _resolve(base_dir: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def _missing_file(rep: Reporter, path: SpecPath, label: str, file: Path) -> bool:
    """Report (and return True) when `file` is not a readable regular file."""
    if file.is_file():
        return False
    what = "is a directory, not a file" if file.is_dir() else "was not found"
    rep.error(
        path,
        f"{label}: file {str(file)!r} {what}",
        hint="Relative paths are resolved against the spec file's directory.",
    )
    return True


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


def _read_npz(
    source: NpzSource,
    raw: RawSource,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
) -> None:
    file = _resolve(base_dir, source.path)
    at_path = (*raw.where, "path")
    if _missing_file(rep, at_path, raw.label, file):
        return
    try:
        archive = np.load(file, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
        rep.error(at_path, f"{raw.label}: could not read {str(file)!r}: {exc}")
        return
    if not isinstance(archive, np.lib.npyio.NpzFile):
        rep.error(
            at_path,
            f"{raw.label}: {str(file)!r} holds a single array (.npy), not an .npz archive",
            hint="Use `type: npy` with `inputs:`/`targets:` mapping names to .npy files.",
        )
        return
    with archive:
        available = list(archive.files)
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
                    dest[model_name] = RawArray(archive[found], f"array {found!r}", at)
                except Exception as exc:  # noqa: BLE001 - e.g. pickled object arrays
                    rep.error(at, f"{raw.label}: could not read array {found!r}: {exc}")


def _read_npy(
    source: NpySource,
    raw: RawSource,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    needed_outputs: list[str],
    base_dir: Path,
    rep: Reporter,
) -> None:
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
            file = _resolve(base_dir, name)
            if _missing_file(rep, at, raw.label, file):
                continue
            try:
                array = np.load(file, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
                rep.error(at, f"{raw.label}: could not read {str(file)!r}: {exc}")
                continue
            if not isinstance(array, np.ndarray):
                array.close()
                rep.error(
                    at,
                    f"{raw.label}: {name!r} is an .npz archive, not an .npy file",
                    hint="Use `type: npz` for archives.",
                )
                continue
            dest[key] = RawArray(array, f"file {name!r}", at)


def _column(
    rep: Reporter,
    raw: RawSource,
    ref: str | int,
    names: list[str] | None,
    ncols: int,
    at: SpecPath,
) -> int | None:
    """Index of a column given by name or 0-based index, or None (reported)."""
    if isinstance(ref, str):
        if names is not None and ref in names:
            return names.index(ref)
        rep.error(
            at,
            f"{raw.label}: no column named {ref!r}",
            received=short_repr(ref),
            hint=choices_hint(ref, names or []),
        )
        return None
    if 0 <= ref < ncols:
        return ref
    rep.error(
        at,
        f"{raw.label}: column index {ref} is out of range; the file has {ncols} "
        f"columns (0 to {ncols - 1})",
        received=short_repr(ref),
    )
    return None


def _read_csv(
    source: CsvSource, raw: RawSource, inp: str, out: str, base_dir: Path, rep: Reporter
) -> None:
    file = _resolve(base_dir, source.path)
    at_path = (*raw.where, "path")
    if _missing_file(rep, at_path, raw.label, file):
        return
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=source.delimiter)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        rep.error(at_path, f"{raw.label}: could not read {str(file)!r}: {exc}")
        return
    names = [c.strip() for c in rows.pop(0)[1]] if source.header and rows else None
    if not rows:
        rep.error(at_path, f"{raw.label}: {str(file)!r} has no data rows")
        return
    ncols = len(names) if names is not None else len(rows[0][1])
    label = _column(rep, raw, source.label, names, ncols, (*raw.where, "label"))
    if source.features is None:
        features = [i for i in range(ncols) if i != label]
        feature_paths = [at_path] * len(features)
    else:
        features, feature_paths = [], []
        for i, ref in enumerate(source.features):
            at = (*raw.where, "features", i)
            index = _column(rep, raw, ref, names, ncols, at)
            if index is not None and index == label:
                rep.error(
                    at,
                    f"{raw.label}: the label column {ref!r} is also listed as a feature",
                    received=short_repr(ref),
                    hint="Remove it from `features`.",
                )
            elif index is not None:
                features.append(index)
                feature_paths.append(at)
    if label is None or len(features) != len(source.features or features):
        return
    wanted = [*features, label]
    paths = [*feature_paths, (*raw.where, "label")]
    values = np.empty((len(rows), len(wanted)), dtype=np.float64)
    bad_columns: set[int] = set()
    for r, (line, row) in enumerate(rows):
        if len(row) != ncols:
            rep.error(
                at_path,
                f"{raw.label}: row {r + 1} (line {line}) has {len(row)} columns, expected {ncols}",
                received=row,
            )
            return
        for j, col in enumerate(wanted):
            cell = row[col].strip()
            try:
                values[r, j] = float(cell)
            except ValueError:
                values[r, j] = math.nan
                if col not in bad_columns:
                    bad_columns.add(col)
                    name = repr(names[col]) if names is not None else str(col)
                    kind = "empty" if not cell else "non-numeric"
                    rep.error(
                        paths[j],
                        f"{raw.label}: {kind} value in row {r + 1} (line {line}), column {name}",
                        received=short_repr(cell),
                        hint="Encode the classes as integers 0..K-1."
                        if j == len(features)
                        else "Only numeric columns can be used: encode it as numbers, "
                        "or leave the column out of `features`.",
                    )
    if bad_columns:
        return
    raw.inputs[inp] = RawArray(values[:, :-1], "the feature matrix", at_path)
    label_name = repr(names[label]) if names is not None else str(label)
    raw.targets[out] = RawArray(values[:, -1], f"label column {label_name}", paths[-1])
