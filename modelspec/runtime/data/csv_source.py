"""The `csv` data source: a numeric table whose columns feed one input and one output
(`label`/`features`), or columns mapped to model inputs and outputs by name
(`inputs`/`targets`: text, numeric and class-name columns, mapped in `text_columns`).

The file is read strictly as UTF-8 (a bad byte is reported with its offset and line),
with the stdlib `csv` module (quoted fields may hold delimiters and newlines). Cells are
parsed here, row by row, so a bad cell is reported with its row, file line and column;
the feature matrix keeps its column names and line numbers for the same reason, so the
later checks (e.g. non-finite values) can point at a cell too.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from modelspec.errors import choices_hint, short_repr
from modelspec.runtime.data.raw import (
    RawArray,
    RawSource,
    ReadContext,
    Reporter,
    SpecPath,
)
from modelspec.runtime.data.text_columns import (
    Column,
    Table,
    quiet_context,
    read_mapped,
    target_class_names,
)
from modelspec.runtime.data.utf8 import TextFileError, read_utf8
from modelspec.schema.data import CsvSource

Rows = list[tuple[int, list[str]]]
"""(file line the row starts on, cells) of every non-blank row."""


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


def parse_rows(file: Path, delimiter: str) -> Rows:
    """The non-blank rows of a CSV file read strictly as UTF-8 (`TextFileError`, naming
    the file, when it is not UTF-8 or not CSV)."""
    text = read_utf8(file, bom=True)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: Rows = []
    try:
        start = 1
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise TextFileError(
            f"{str(file)!r} is not valid CSV: line {reader.line_num}: {exc}"
        ) from None
    return rows


def _load(
    source: CsvSource, raw: RawSource, ctx: ReadContext
) -> tuple[Path, list[str] | None, Rows] | None:
    """(file, header names, data rows); None when the file cannot be read or has no data
    rows (reported on `path`)."""
    at_path = (*raw.where, "path")
    file = ctx.file(raw, source.path, at_path)
    if file is None:
        return None
    try:
        rows = parse_rows(file, source.delimiter)
    except TextFileError as exc:
        ctx.rep.error(at_path, f"{raw.label}: {exc.message}", hint=exc.hint)
        return None
    names = [c.strip() for c in rows.pop(0)[1]] if source.header and rows else None
    if not rows:
        ctx.rep.error(at_path, f"{raw.label}: {str(file)!r} has no data rows")
        return None
    return file, names, rows


def _table(source: CsvSource, raw: RawSource, ctx: ReadContext, loaded: tuple) -> Table | None:
    """The rows as a `Table` for the `inputs`/`targets` mapping; None (reported) when a
    row has another number of cells than the header."""
    file, names, rows = loaded
    ncols = len(names) if names is not None else len(rows[0][1])
    for r, (line, row) in enumerate(rows):
        if len(row) != ncols:
            ctx.rep.error(
                (*raw.where, "path"),
                f"{raw.label}: row {r + 1} (line {line}) of {str(file)!r} has {len(row)} "
                f"columns, expected {ncols}",
                received=row,
                hint="Quote cells that hold the delimiter or a newline.",
            )
            return None

    def column(ref: str | int, at: SpecPath) -> Column | None:
        index = _column(ctx.rep, raw, ref, names, ncols, at)
        if index is None:
            return None
        what = f"column {names[index]!r}" if names is not None else f"column {index}"
        return Column(what, [row[index] for _, row in rows], cells=True)

    return Table([line for line, _ in rows], column)


def csv_class_names(
    source: CsvSource, base_dir: Path, outputs: list[str]
) -> dict[str, tuple[list[str], str]]:
    """Class names of the class-name target columns (for the run's `class_names.json`),
    as the training data was mapped."""
    if source.label is not None:
        return {}
    raw, ctx = quiet_context(base_dir)
    loaded = _load(source, raw, ctx)
    return target_class_names(source, _table(source, raw, ctx, loaded) if loaded else None)


def read_csv(source: CsvSource, raw: RawSource, ctx: ReadContext) -> None:
    """With `label`: the feature columns into the model's one input and the label column
    into its one output, as float64, every unreadable cell's column reported once. With
    `inputs`/`targets`: each mapped column into its model input or output."""
    if source.label is None:
        loaded = _load(source, raw, ctx)
        table = _table(source, raw, ctx, loaded) if loaded is not None else None
        if table is not None:
            read_mapped(source, raw, ctx, table)
        return
    rep = ctx.rep
    names = ctx.single_input_output(source, raw)
    if names is None:
        return
    inp, out = names
    at_path = (*raw.where, "path")
    loaded = _load(source, raw, ctx)
    if loaded is None:
        return
    _, names, rows = loaded
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
