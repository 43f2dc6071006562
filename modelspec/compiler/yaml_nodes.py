"""From PyYAML's node graph to plain data, remembering where every value was written.

The walk refuses anything that is not plain data (`!!python/object`, custom tags) at
its position before anything is constructed, reports duplicate keys, resolves `<<:`
merge keys itself (deduplicated, so nested merges cannot blow up) and caps what hostile
files can cost: values repeated through aliases and merges (`MAX_ALIAS_VALUES`),
nesting (`MAX_NESTING`), integers beyond 64 bits. `yaml_positions` is the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from modelspec.errors import Diagnostic, Path, Pos, short_repr

MAX_ALIAS_VALUES = 20_000
"""Values (mappings, lists and scalars) that aliases may repeat in one spec file, each
use counted. A spec reusing a 100-layer anchor 50 times repeats about 5,000; alias
bombs repeat billions."""


MAX_NESTING = 64
"""Levels of nested mappings and lists, aliases included."""


CORE = "tag:yaml.org,2002:"


_SCALAR_TAGS = {CORE + t for t in ("str", "int", "float", "bool", "null")}


_MERGE = CORE + "merge"


class Limit(Exception):
    """A cap was reached: stop walking at once (the diagnostic says where)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Document:
    """Parsed data plus the position of every value (`values`) and mapping key (`keys`)."""

    data: Any
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)


@dataclass
class Walk:
    """State of one walk over a node graph."""

    loader: Any
    file: str
    doc: Document
    errors: list[Diagnostic]
    walked: set[int] = field(default_factory=set)
    repeats: int = 0
    merged: dict[int, list] = field(default_factory=dict)


def _pos(file: str, node: yaml.Node) -> Pos:
    return (file, node.start_mark.line + 1, node.start_mark.column + 1)


def _diag(pos: Pos, path: Path, message: str, **kw: Any) -> Diagnostic:
    return Diagnostic.at(pos, path, message, **kw)


def too_deep(pos: Pos, path: Path) -> Diagnostic:
    return _diag(
        pos,
        path,
        f"the spec nests mappings and lists deeper than {MAX_NESTING} levels",
        hint="Flatten the structure; no spec section needs this depth.",
    )


def walk(w: Walk, node, path: Path, stack: tuple[int, ...]) -> Any:
    pos = _pos(w.file, node)
    w.doc.values[path] = pos
    if id(node) in w.walked:  # reached again through an alias
        _count_repeats(w, 1, pos, path)
    w.walked.add(id(node))
    if id(node) in stack:  # an alias inside its own anchor: `x: &a [*a]`
        w.errors.append(
            _diag(
                pos,
                path,
                "recursive YAML alias",
                hint="An anchor cannot contain an alias to itself.",
            )
        )
        return None
    if len(stack) >= MAX_NESTING:
        raise Limit(too_deep(pos, path))
    stack = (*stack, id(node))
    if isinstance(node, yaml.MappingNode):
        if node.tag != CORE + "map":
            return _bad_tag(node, path, w)
        pairs = _flatten(w, node, path, ())
        if pairs is None:
            return None
        out: dict[Any, Any] = {}
        for key_node, value_node, explicit in pairs:
            key = _key(w, key_node, path)
            if key is None:
                continue
            if key in out:
                if explicit:
                    w.errors.append(
                        _diag(
                            _pos(w.file, key_node),
                            (*path, key),
                            f"duplicate key '{key}'",
                            hint="Each key may appear once per mapping; remove one.",
                        )
                    )
                continue
            w.doc.keys[(*path, key)] = _pos(w.file, key_node)
            out[key] = walk(w, value_node, (*path, key), stack)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != CORE + "seq":
            return _bad_tag(node, path, w)
        return [walk(w, v, (*path, i), stack) for i, v in enumerate(node.value)]
    return _scalar(w, node, path)


def _count_repeats(w: Walk, n: int, pos: Pos, path: Path) -> None:
    """Count values that an alias or a `<<:` merge repeats; stop past the cap."""
    w.repeats += n
    if w.repeats > MAX_ALIAS_VALUES:
        raise Limit(
            _diag(
                pos,
                path,
                f"YAML aliases in this spec repeat more than {MAX_ALIAS_VALUES:,} values",
                hint="Use fewer or less nested aliases and merge keys; modelspec caps alias "
                "expansion to protect against 'billion laughs' files.",
            )
        )


def _key(w: Walk, node, path: Path) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        w.errors.append(_diag(_pos(w.file, node), path, "mapping keys must be plain names"))
        return None
    key = _scalar(w, node, path)
    return key if isinstance(key, str | int) else str(key)


def _flatten(w: Walk, node, path: Path, stack: tuple[int, ...]) -> list | None:
    """A mapping's (key node, value node, explicit) pairs with `<<:` merges resolved.

    Merged pairs come first, deduplicated by key (the earlier merged mapping wins, an
    explicit key wins over all): the result is never longer than the distinct keys
    written, so nested merges cannot blow up. Flattened mappings are cached by node."""
    if id(node) in w.merged:
        return w.merged[id(node)]
    explicit = [(k, v) for k, v in node.value if k.tag != _MERGE]
    explicit_keys = {_plain_key(w, k) for k, _ in explicit}
    merged: list = []
    seen: set = set()
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for src in sources:
            if not isinstance(src, yaml.MappingNode) or id(src) in stack or src is node:
                found = "itself" if isinstance(src, yaml.MappingNode) else _kind_name(src)
                w.errors.append(
                    _diag(
                        _pos(w.file, src),
                        path,
                        f"invalid merge key: expected a mapping or list of mappings for "
                        f"merging, but found {found}",
                        hint="`<<:` takes an alias to a mapping, or a list of them.",
                    )
                )
                return None
            sub = _flatten(w, src, path, (*stack, id(node)))
            if sub is None:
                return None
            _count_repeats(w, len(sub), _pos(w.file, src), path)
            for k, v, _ in sub:
                plain = _plain_key(w, k)
                if plain in explicit_keys or plain in seen:
                    continue
                seen.add(plain)
                merged.append((k, v, False))
    result = merged + [(k, v, True) for k, v in explicit]
    w.merged[id(node)] = result
    return result


def _kind_name(node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        return "a scalar"
    return "something else"


def _plain_key(w: Walk, node) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
        try:
            key = w.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError):
            return node.value
        return key if isinstance(key, str | int) else str(key)
    return id(node)


def _scalar(w: Walk, node, path: Path) -> Any:
    if node.tag not in _SCALAR_TAGS:
        return _bad_tag(node, path, w)
    try:
        value = w.loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, KeyError) as exc:
        kind = node.tag.replace(CORE, "")
        digits = sum(c.isdigit() for c in node.value)
        too_long = "digit" in str(exc) or "limit" in str(exc)
        w.errors.append(
            _diag(
                _pos(w.file, node),
                path,
                f"number is too long ({digits:,} digits)" if too_long else f"not a valid {kind}",
                received=short_repr(node.value),
                hint={
                    "int": "Write a plain number, e.g. 0.001 or 1e-3.",
                    "float": "Write a plain number, e.g. 0.001 or 1e-3.",
                    "bool": "Write true or false.",
                }.get(kind),
            )
        )
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        w.errors.append(
            _diag(
                _pos(w.file, node),
                path,
                "integer out of range: numbers in a spec fit in 64 bits",
                received=short_repr(node.value, 40),
                hint="Check the number; sizes and seeds are far below 2**63.",
            )
        )
        return None
    return value


def _bad_tag(node, path: Path, w: Walk) -> None:
    tag = node.tag.replace(CORE, "!!")
    w.errors.append(
        _diag(
            _pos(w.file, node),
            path,
            f"YAML tag '{tag}' is not allowed: specs are data, never code",
            received=tag[:80],
            hint="Remove the tag and write the value as plain YAML.",
        )
    )
    return None
