"""Safe YAML (and JSON) parsing that remembers where every value came from.

We walk PyYAML's node graph ourselves instead of using `yaml.safe_load` so that each
value and each mapping key keeps its (line, col), and so that anything that is not
plain data — `!!python/object`, custom tags — is refused *at its position* before
anything could be constructed. Duplicate keys (silently overwritten by YAML) are errors.

The reader is hardened against hostile input, as hardened YAML loaders are: aliases
may repeat at most `MAX_ALIAS_VALUES` values in all (a "billion laughs" bomb stops there,
with its position, in milliseconds, instead of exhausting memory; values written out
are bounded by the file size cap), nesting is capped at `MAX_NESTING`
levels (instead of a RecursionError), merge keys are flattened without repetition, and
control characters and malformed typed scalars are positioned errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelspec.errors import Diagnostic, Path, Pos, SpecError, short_repr

MAX_ALIAS_VALUES = 20_000
"""Values (mappings, lists and scalars) that aliases may repeat in one spec file, each
use counted. A spec reusing a 100-layer anchor 50 times repeats about 5,000; alias
bombs repeat billions."""
MAX_NESTING = 64
"""Levels of nested mappings and lists, aliases included."""

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_MERGE = _CORE + "merge"


class _Limit(Exception):
    """A cap was reached: stop walking at once (the diagnostic says where)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2 rule; 1.1 needs a dot) and
    refuses to compose documents nested deeper than `MAX_NESTING`."""

    _depth = 0
    file = "<spec>"

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise _Limit(_too_deep((self.file, mark.line + 1, mark.column + 1), ()))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_SpecLoader.add_implicit_resolver(
    _CORE + "float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass
class Document:
    """Parsed data plus the position of every value (`values`) and mapping key (`keys`)."""

    data: Any
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)


@dataclass
class _Walk:
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


def _too_deep(pos: Pos, path: Path) -> Diagnostic:
    return _diag(
        pos,
        path,
        f"the spec nests mappings and lists deeper than {MAX_NESTING} levels",
        hint="Flatten the structure; no spec section needs this depth.",
    )


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_text(text: str, file: str) -> Document:
    """Parse one YAML or JSON text. Raises SpecError with every problem found."""
    if file.endswith(".json") and "\t" in text:
        # YAML forbids tab indentation; in valid JSON a raw tab can only be whitespace,
        # so a space keeps every line and column where it was.
        text = text.replace("\t", " ")
    loader = None
    try:
        loader = _SpecLoader(text)
        loader.file = file
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise SpecError.single(_control_character(text, file, exc)) from None
    except _Limit as exc:
        raise SpecError.single(exc.diagnostic) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if file.endswith(".json"):
            _raise_json_error(text, file)
        raise SpecError.single(
            Diagnostic(
                file,
                line,
                col,
                "<document>",
                f"invalid YAML: {problem}",
                hint="Check indentation, colons and brackets near this position.",
            )
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise SpecError.single(
            Diagnostic(
                file,
                1,
                1,
                "<document>",
                "the file is empty",
                hint="A spec needs at least `modelspec: 1` and a `model:` section.",
            )
        )
    doc = Document(None)
    walk = _Walk(loader, file, doc, [])
    try:
        doc.data = _walk(walk, node, (), ())
    except _Limit as exc:
        raise SpecError([*walk.errors, exc.diagnostic]) from None
    if walk.errors:
        raise SpecError(walk.errors)
    return doc


def _control_character(text: str, file: str, exc: yaml.reader.ReaderError) -> Diagnostic:
    index = exc.position if isinstance(exc.position, int) else 0
    line, col = line_col(text, min(index, len(text)))
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return Diagnostic(
        file,
        line,
        col,
        "<document>",
        f"control character U+{ord(char):04X} is not allowed in a spec",
        hint="YAML text may hold tabs and line breaks, but no other control characters; "
        + (
            f'write it as an escape in a double-quoted string ("\\x{ord(char):02x}").'
            if ord(char) < 0x100
            else "remove it."
        ),
    )


def _raise_json_error(text: str, file: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError.single(
            Diagnostic(file, exc.lineno, exc.colno, "<document>", f"invalid JSON: {exc.msg}")
        ) from None


def _walk(w: _Walk, node, path: Path, stack: tuple[int, ...]) -> Any:
    pos = _pos(w.file, node)
    w.doc.values[path] = pos
    if id(node) in w.walked:  # reached again through an alias
        w.repeats += 1
        if w.repeats > MAX_ALIAS_VALUES:
            raise _Limit(
                _diag(
                    pos,
                    path,
                    f"YAML aliases in this spec repeat more than {MAX_ALIAS_VALUES:,} values",
                    hint="Use fewer or less nested aliases; modelspec caps alias expansion "
                    "to protect against 'billion laughs' files.",
                )
            )
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
        raise _Limit(_too_deep(pos, path))
    stack = (*stack, id(node))
    if isinstance(node, yaml.MappingNode):
        if node.tag != _CORE + "map":
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
            out[key] = _walk(w, value_node, (*path, key), stack)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _CORE + "seq":
            return _bad_tag(node, path, w)
        return [_walk(w, v, (*path, i), stack) for i, v in enumerate(node.value)]
    return _scalar(w, node, path)


def _key(w: _Walk, node, path: Path) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        w.errors.append(_diag(_pos(w.file, node), path, "mapping keys must be plain names"))
        return None
    key = _scalar(w, node, path)
    return key if isinstance(key, str | int) else str(key)


def _flatten(w: _Walk, node, path: Path, stack: tuple[int, ...]) -> list | None:
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


def _plain_key(w: _Walk, node) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
        try:
            key = w.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError):
            return node.value
        return key if isinstance(key, str | int) else str(key)
    return id(node)


def parse_value(text: str) -> Any:
    """One `--set` value, read with the same safe rules as spec files (1e-3 is a float).
    Raises yaml.YAMLError or ValueError when it is not valid YAML data."""
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    except _Limit as exc:
        raise ValueError(exc.diagnostic.message) from None
    finally:
        loader.dispose()


def _scalar(w: _Walk, node, path: Path) -> Any:
    if node.tag not in _SCALAR_TAGS:
        return _bad_tag(node, path, w)
    try:
        return w.loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        kind = node.tag.replace(_CORE, "")
        digits = sum(c.isdigit() for c in node.value)
        too_long = "digit" in str(exc) or "limit" in str(exc)
        w.errors.append(
            _diag(
                _pos(w.file, node),
                path,
                f"number is too long ({digits:,} digits)" if too_long else f"not a valid {kind}",
                received=short_repr(node.value),
                hint="Write a plain number, e.g. 0.001 or 1e-3."
                if kind in ("int", "float")
                else None,
            )
        )
        return None


def _bad_tag(node, path: Path, w: _Walk) -> None:
    tag = node.tag.replace(_CORE, "!!")
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
