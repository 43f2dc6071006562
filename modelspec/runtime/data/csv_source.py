"""The `csv` data source: a numeric table whose columns feed one input and one output.

Cells are parsed here, row by row, so a bad cell is reported with its row, file line and
column; the feature matrix keeps its column names and line numbers for the same reason,
so the later checks (e.g. non-finite values) can point at a cell too.
"""

from __future__ import annotations

import csv
import math

import numpy as np

from modelspec.errors import choices_hint, short_repr
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext, Reporter, SpecPath
from modelspec.schema.data import CsvSource


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


def read_csv(source: CsvSource, raw: RawSource, ctx: ReadContext) -> None:
    """Read the feature columns into the model's one input and the label column into its
    one output, as float64; every unreadable cell's column is reported once."""
    rep = ctx.rep
    names = ctx.single_input_output(source, raw)
    if names is None:
        return
    inp, out = names
    at_path = (*raw.where, "path")
    file = ctx.file(raw, source.path, at_path)
    if file is None:
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
    shown = [repr(names[c]) if names is not None else str(c) for c in wanted]
    lines = [line for line, _ in rows]
    raw.inputs[inp] = RawArray(
        values[:, :-1], "the feature matrix", at_path, columns=shown[:-1], lines=lines
    )
    raw.targets[out] = RawArray(values[:, -1], f"label column {shown[-1]}", paths[-1], lines=lines)
