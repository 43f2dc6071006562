"""Mapping table columns to model inputs and outputs by name: the `inputs`/`targets`
form of the `csv` source and the `jsonl` source.

Both readers load their file into a `Table` (rows, the file line of each, and a way to
fetch one column that reports unknown names); everything after that is here, once:
text inputs as object arrays of `str`, numeric inputs from one or more columns, and
target columns that hold class names turned into class indices. Class names come from
`classes`, else from the first source of the run that defines them (the training data:
`ReadContext.learned`), else from the sorted distinct values of the column, so the
validation data is always mapped with the training data's classes and a class it alone
has is an error naming its line. Whether a string input really holds strings (and a
numeric one numbers) is checked afterwards by `checks`, with the column named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.errors import format_path, short_repr
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext, Reporter, SpecPath
from modelspec.schema.data import ColumnTarget


@dataclass
class Column:
    """One column's values, one per row, and how messages name it."""

    what: str
    """"column 'text'" (CSV) or "field 'text'" (JSONL)."""
    values: list[Any]
    """CSV: the cells as read (`str`); JSONL: the JSON values."""
    cells: bool
    """True when the values are CSV cells, which numbers are parsed from."""


@dataclass
class Table:
    """A file's data rows, ready to be mapped."""

    lines: list[int]
    """File line each row starts on."""
    column: Callable[[str | int, SpecPath], Column | None]
    """The column a spec names, or None when there is none (reported at the path)."""
    row_word: str = "row"
    """How messages name a row: "row" (CSV, also giving the line) or "line" (JSONL)."""

    def where(self, row: int) -> str:
        line = self.lines[row]
        return f"line {line}" if self.row_word == "line" else f"row {row + 1} (line {line})"


def _refs(value: Any, at: SpecPath) -> list[tuple[str | int, SpecPath]]:
    if isinstance(value, list):
        return [(ref, (*at, i)) for i, ref in enumerate(value)]
    return [(value, at)]


def _number(value: Any) -> bool:
    return isinstance(value, Real)  # JSON numbers and true/false


def numbers(
    col: Column, table: Table, raw: RawSource, ctx: ReadContext, at: SpecPath
) -> np.ndarray | None:
    """The column as float64 (N,) (or (N, ...) for JSON lists of numbers); None, with
    the first bad row reported, when a value is not a number."""
    if col.cells:
        out = np.empty(len(col.values), dtype=np.float64)
        for r, cell in enumerate(col.values):
            try:
                out[r] = float(cell.strip())
            except ValueError:
                kind = "empty" if not cell.strip() else "non-numeric"
                ctx.rep.error(
                    at,
                    f"{raw.label}: {kind} value in {table.where(r)}, {col.what}",
                    received=short_repr(cell),
                    hint="Only numeric columns can feed a numeric input: encode it as "
                    "numbers, or declare the input `dtype: string`.",
                )
                return None
        return out
    shape = None
    rows = []
    for r, value in enumerate(col.values):
        try:
            row = np.asarray(value, dtype=np.float64)
            ok = all(_number(v) for v in np.asarray(value, dtype=object).reshape(-1))
        except (TypeError, ValueError):
            ok = False
        if not ok or value is None:
            ctx.rep.error(
                at,
                f"{raw.label}: {table.where(r)}: {col.what} holds {short_repr(value)}, not a "
                "number or a list of numbers",
                received=short_repr(value),
            )
            return None
        if shape is None:
            shape = row.shape
        elif row.shape != shape:
            ctx.rep.error(
                at,
                f"{raw.label}: {table.where(r)}: {col.what} has shape {list(row.shape)}, but "
                f"the first line's has {list(shape)}",
                received=short_repr(value),
                hint="Every line needs the same shape of list.",
            )
            return None
        rows.append(row)
    return np.stack(rows) if rows else np.zeros((0,), np.float64)


def _is_text(col: Column) -> bool:
    """Whether the column holds class names rather than numbers: JSONL strings, or CSV
    cells none of which is a number."""
    if not col.cells:
        return any(isinstance(v, str) for v in col.values)
    for cell in col.values:
        try:
            float(cell)
            return False
        except ValueError:
            continue
    return True


def read_inputs(source: Any, raw: RawSource, ctx: ReadContext, table: Table) -> None:
    """Every model input from its mapped column(s) into `raw.inputs`."""
    field_at = (*raw.where, "inputs")
    given = source.inputs or {}
    for key in given:
        if key not in ctx.model_inputs:
            ctx.not_a_model_name(raw, (*field_at, key), key, "input", ctx.model_inputs)
    for name, want in ctx.model_inputs.items():
        if name not in given:
            ctx.rep.error(
                field_at,
                f"{raw.label}: no column given for model input {name!r}",
                received=list(given),
                hint=f"Add `{name}: <column>` to {format_path(field_at)}.",
            )
            continue
        refs = _refs(given[name], (*field_at, name))
        cols = [(table.column(ref, at), at) for ref, at in refs]
        if any(col is None for col, _ in cols):
            continue
        scalar = tuple(want.shape[1:]) == ()
        if want.dtype == "string" and len(cols) != 1:
            ctx.rep.error(
                (*field_at, name),
                f"{raw.label}: model input {name!r} has dtype string and takes one text "
                f"column, but {len(cols)} are given",
                received=short_repr(given[name]),
            )
            continue
        first, first_at = cols[0]
        if want.dtype == "string" or (len(cols) == 1 and not first.cells and _is_text(first)):
            # text, or JSON strings for a numeric input: `checks` judges every value
            array = np.empty(len(first.values), dtype=object)
            array[:] = first.values
            if not scalar:
                array = array[:, np.newaxis]
            raw.inputs[name] = RawArray(array, first.what, first_at, lines=table.lines)
            continue
        arrays = [numbers(col, table, raw, ctx, at) for col, at in cols]
        if any(a is None for a in arrays):
            continue
        if len(arrays) == 1:
            array = arrays[0] if scalar or arrays[0].ndim > 1 else arrays[0][:, np.newaxis]
            names = None
        else:
            array = np.stack(arrays, axis=1)
            names = [col.what.split(" ", 1)[1] for col, _ in cols]
        what = cols[0][0].what if len(cols) == 1 else f"columns {', '.join(names or [])}"
        raw.inputs[name] = RawArray(
            array, what, (*field_at, name), columns=names, lines=table.lines
        )


def read_targets(source: Any, raw: RawSource, ctx: ReadContext, table: Table) -> None:
    """Every needed model output from its mapped column into `raw.targets`."""
    field_at = (*raw.where, "targets")
    given = source.targets or {}
    for key in given:
        if key not in ctx.model_outputs:
            ctx.not_a_model_name(raw, (*field_at, key), key, "output", ctx.model_outputs)
    for name in ctx.needed_outputs:
        if name not in given:
            ctx.rep.error(
                field_at,
                f"{raw.label}: no column given for model output {name!r}",
                received=list(given),
                hint=f"Add `{name}: <column>` to {format_path(field_at)}.",
            )
            continue
        target = given[name]
        explicit = target.classes if isinstance(target, ColumnTarget) else None
        at = (*field_at, name, "column") if isinstance(target, ColumnTarget) else (*field_at, name)
        col = table.column(target.column if isinstance(target, ColumnTarget) else target, at)
        if col is None:
            continue
        learned = ctx.learned.get(("classes", name))
        classes = explicit or learned
        if classes is None and _is_text(col):
            classes = sorted({_class_value(v, col) for v in col.values if isinstance(v, str)})
            classes = [c for c in classes if c]
        if classes is None:
            array = numbers(col, table, raw, ctx, at)
            if array is not None:
                raw.targets[name] = RawArray(array, col.what, at, lines=table.lines)
            continue
        ctx.learned.setdefault(("classes", name), list(classes))
        source_of = (
            "`classes`"
            if explicit
            else ("the training data's column" if learned else "the column's distinct values")
        )
        labels = class_indices(col, classes, table, raw, ctx, at, source_of)
        if labels is not None:
            raw.targets[name] = RawArray(
                labels, f"the classes of {col.what}", at, lines=table.lines
            )


def _class_value(value: Any, col: Column) -> str:
    return value.strip() if col.cells else value


def class_indices(
    col: Column,
    classes: list[str],
    table: Table,
    raw: RawSource,
    ctx: ReadContext,
    at: SpecPath,
    source_of: str,
) -> np.ndarray | None:
    """int32 (N,) indices of the column's class names in `classes`; None, with the first
    value that is not a listed class reported (naming its line)."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(col.values), dtype=np.int32)
    for r, value in enumerate(col.values):
        key = _class_value(value, col) if isinstance(value, str) else None
        if key is None or key not in index:
            what = "an empty value" if key == "" else f"{short_repr(value)}"
            ctx.rep.error(
                at,
                f"{raw.label}: {table.where(r)}: {col.what} holds {what}, which is not one "
                f"of the {len(classes)} classes (from {source_of})",
                received=short_repr(value),
                hint=f"Classes: {short_repr(classes, 120)}. List every class in "
                "`classes:`, or fix the value.",
            )
            return None
        out[r] = index[key]
    return out


def read_mapped(source: Any, raw: RawSource, ctx: ReadContext, table: Table) -> None:
    """The `inputs`/`targets` mapping of `source` over `table`."""
    read_inputs(source, raw, ctx, table)
    read_targets(source, raw, ctx, table)


def target_class_names(source: Any, table: Table | None) -> dict[str, tuple[list[str], str]]:
    """Class names per output whose target column holds class names (for the run's
    `class_names.json`): the given `classes`, else the column's sorted distinct values,
    as `read_targets` maps the training data."""
    found: dict[str, tuple[list[str], str]] = {}
    for name, target in (getattr(source, "targets", None) or {}).items():
        if isinstance(target, ColumnTarget) and target.classes:
            found[name] = (list(target.classes), "int")
            continue
        if table is None:
            continue
        ref = target.column if isinstance(target, ColumnTarget) else target
        col = table.column(ref, ())
        if col is not None and _is_text(col):
            values = {_class_value(v, col) for v in col.values if isinstance(v, str)}
            found[name] = (sorted(v for v in values if v), "int")
    return found


def quiet_context(base_dir: Path) -> tuple[RawSource, ReadContext]:
    """A context whose reports are dropped: for re-reading a training source that was
    already checked (the class names written after loading)."""
    rep = Reporter(lambda path: ("", 0, 0))
    return RawSource("", ()), ReadContext({}, {}, [], Path(base_dir), rep)
