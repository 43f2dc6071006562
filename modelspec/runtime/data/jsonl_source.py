"""The `jsonl` data source: JSON Lines, one object per line, whose fields are mapped to
model inputs and outputs by name (`text_columns`).

The file is read strictly as UTF-8; each non-blank line must be a JSON object. A line
that is not valid JSON, or not an object, and a mapped field missing from a line are
errors naming the file and the line (the first few, together), before step 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelspec.errors import did_you_mean
from modelspec.runtime.data.raw import RawSource, ReadContext, SpecPath
from modelspec.runtime.data.text_columns import (
    Column,
    Table,
    quiet_context,
    read_mapped,
    target_class_names,
)
from modelspec.runtime.data.utf8 import TextFileError, read_utf8
from modelspec.schema.data import JsonlSource

_MAX_LISTED = 5
"""Bad lines reported one by one; the rest are counted."""


def _objects(
    source: JsonlSource, raw: RawSource, ctx: ReadContext
) -> tuple[list[int], list[dict[str, Any]]] | None:
    """(line numbers, objects) of the file's non-blank lines; None when the file cannot
    be read, is empty, or has lines that are not JSON objects (reported on `path`)."""
    at = (*raw.where, "path")
    file = ctx.file(raw, source.path, at)
    if file is None:
        return None
    try:
        text = read_utf8(file, bom=True)
    except TextFileError as exc:
        ctx.rep.error(at, f"{raw.label}: {exc.message}", hint=exc.hint)
        return None
    lines, objects, bad = [], [], []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__.replace("dict", "object").replace("list", "array")
            bad.append(f"line {number} holds a JSON {kind}, not an object")
            continue
        lines.append(number)
        objects.append(value)
    for message in bad[:_MAX_LISTED]:
        ctx.rep.error(
            at,
            f"{raw.label}: {str(file)!r} {message}",
            hint='Write one JSON object per line: {"text": "...", "label": "..."}.',
        )
    if len(bad) > _MAX_LISTED:
        ctx.rep.error(at, f"{raw.label}: {len(bad) - _MAX_LISTED} more lines are not objects")
    if bad:
        return None
    if not objects:
        ctx.rep.error(at, f"{raw.label}: {str(file)!r} has no data lines")
        return None
    return lines, objects


def _table(raw: RawSource, ctx: ReadContext, file: str, loaded: tuple) -> Table:
    lines, objects = loaded

    def column(ref: str | int, at: SpecPath) -> Column | None:
        missing = [r for r, obj in enumerate(objects) if ref not in obj]
        if missing:
            first = missing[0]
            more = f" (and {len(missing) - 1} more lines)" if len(missing) > 1 else ""
            ctx.rep.error(
                at,
                f"{raw.label}: line {lines[first]} of {file!r} has no field {ref!r}{more}",
                received="fields " + ", ".join(repr(k) for k in objects[first]),
                hint=did_you_mean(str(ref), objects[first]) or "Add it, or map another field.",
            )
            return None
        return Column(f"field {ref!r}", [obj[ref] for obj in objects], cells=False)

    return Table(lines, column, row_word="line")


def read_jsonl(source: JsonlSource, raw: RawSource, ctx: ReadContext) -> None:
    """Each mapped field into its model input or output."""
    loaded = _objects(source, raw, ctx)
    if loaded is not None:
        read_mapped(source, raw, ctx, _table(raw, ctx, source.path, loaded))


def jsonl_class_names(
    source: JsonlSource, base_dir: Path, outputs: list[str]
) -> dict[str, tuple[list[str], str]]:
    """Class names of the class-name target fields (for the run's `class_names.json`),
    as the training data was mapped."""
    raw, ctx = quiet_context(base_dir)
    loaded = _objects(source, raw, ctx)
    table = _table(raw, ctx, source.path, loaded) if loaded is not None else None
    return target_class_names(source, table)


__all__ = ["jsonl_class_names", "read_jsonl"]
