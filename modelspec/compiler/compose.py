"""Spec composition: `extends:` (deep merge, lists replaced) and `--set a.b=v` overrides.

Both happen on plain data *before* schema validation, so an override is checked like
everything else; positions are carried along so an error in a value that came from a
base file points into that file, and one from `--set` names the override.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import yaml

from modelspec.compiler.yaml_positions import Document, parse_value
from modelspec.errors import Diagnostic, Path, Pos, SpecError, did_you_mean, format_path


def merge(base: Document, over: Document) -> Document:
    """Deep-merge `over` onto `base`: mappings merge key by key; anything else replaces."""
    out = Document(copy.deepcopy(base.data), dict(base.values), dict(base.keys))
    out.data = _merge(out, base.data, over, over.data, ())
    return out


def _merge(out: Document, a: Any, over: Document, b: Any, path: Path) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        result = dict(a)
        for key, value in b.items():
            sub = (*path, key)
            if (*path, key) in over.keys:
                out.keys[sub] = over.keys[sub]
            result[key] = _merge(out, a.get(key), over, value, sub)
        return result
    _drop(out, path)
    for p, pos in over.values.items():
        if p[: len(path)] == path:
            out.values[p] = pos
    for p, pos in over.keys.items():
        if p[: len(path)] == path and len(p) > len(path):
            out.keys[p] = pos
    return copy.deepcopy(b)


def _drop(doc: Document, path: Path) -> None:
    for table in (doc.values, doc.keys):
        for p in [p for p in table if p[: len(path)] == path and len(p) > len(path)]:
            del table[p]


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(doc: Document, overrides: list[str]) -> Document:
    """Apply `path.to.field=value` overrides (value parsed as YAML, safely)."""
    errors: list[Diagnostic] = []
    for text in overrides:
        where = f"--set '{text}'"
        if "=" not in text:
            errors.append(
                Diagnostic(
                    where,
                    0,
                    0,
                    "<override>",
                    "an override is `path.to.field=value`",
                    received=repr(text),
                )
            )
            continue
        dotted, raw = text.split("=", 1)
        try:
            value = parse_value(raw, where) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw  # not YAML data: the schema checks it as the string written
        except SpecError as exc:
            errors += [dataclasses.replace(d, path=dotted) for d in exc.diagnostics]
            continue
        try:
            path = _resolve_path(doc.data, dotted)
            _assign(doc.data, path, value)
        except _OverrideError as exc:
            errors.append(Diagnostic(where, 0, 0, dotted, str(exc), hint=exc.hint))
            continue
        _drop(doc, path)
        pos: Pos = (where, 0, 0)
        doc.values[path] = pos
        doc.keys[path] = pos
        for sub in _subpaths(value, path):
            doc.values[sub] = pos
    if errors:
        raise SpecError(errors)
    return doc


class _OverrideError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _resolve_path(data: Any, dotted: str) -> Path:
    """`model.layers[2].units`, `model.layers.2.units` or `model.layers.conv1.filters`."""
    parts: list[str | int] = []
    for seg in dotted.strip().split("."):
        found = _SEGMENT.findall(seg)
        if not found or "".join(n or f"[{i}]" for n, i in found) != seg:
            raise _OverrideError(f"cannot parse the path segment {seg!r}")
        for name, index in found:
            parts.append(int(index) if index else name)
    path: list[str | int] = []
    node = data
    for part in parts:
        if isinstance(node, list):
            part = _list_index(node, part, path)
        path.append(part)
        node = (
            node[part]
            if isinstance(node, list)
            else (node.get(part) if isinstance(node, dict) else None)
        )
    return tuple(path)


def _list_index(items: list, part: str | int, path: list) -> int:
    if isinstance(part, str) and part.lstrip("-").isdigit():
        part = int(part)
    if isinstance(part, int):
        if not -len(items) <= part < len(items):
            raise _OverrideError(
                f"index {part} is out of range for {format_path(tuple(path))} ({len(items)} items)"
            )
        return part % len(items)
    names = [i.get("name") for i in items if isinstance(i, dict)]
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise _OverrideError(
        f"no item named {part!r} in {format_path(tuple(path))}",
        hint=did_you_mean(part, [n for n in names if n]),
    )


def _assign(data: Any, path: Path, value: Any) -> None:
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = node[part] if isinstance(node, list) else node.get(part)
        if nxt is None:
            nxt = {}
            node[part] = nxt
        if not isinstance(nxt, dict | list):
            raise _OverrideError(f"{format_path(path[: i + 1])} is a value, not a section")
        node = nxt
    if not isinstance(node, dict | list):
        raise _OverrideError(f"{format_path(path[:-1])} is a value, not a section")
    node[path[-1]] = value


def _subpaths(value: Any, path: Path):
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from _subpaths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i)
            yield from _subpaths(v, (*path, i))
