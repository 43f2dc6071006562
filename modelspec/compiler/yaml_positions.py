"""Safe YAML (and JSON) parsing that remembers where every value came from.

We walk PyYAML's node graph ourselves instead of using `yaml.safe_load` so that each
value and each mapping key keeps its (line, col), and so that anything that is not
plain data — `!!python/object`, custom tags — is refused *at its position* before
anything could be constructed. Duplicate keys (silently overwritten by YAML) are errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelspec.errors import Diagnostic, Path, SpecError, format_path

Pos = tuple[str, int, int]
"""(file, line, col), 1-based; line 0 means 'no position' (e.g. a --set override)."""

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.2 rule; 1.1 needs a dot)."""


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


def _pos(file: str, node: yaml.Node) -> Pos:
    return (file, node.start_mark.line + 1, node.start_mark.column + 1)


def _diag(pos: Pos, path: Path, message: str, **kw: Any) -> Diagnostic:
    return Diagnostic(pos[0], pos[1], pos[2], format_path(path), message, **kw)


def parse_text(text: str, file: str) -> Document:
    """Parse one YAML or JSON text. Raises SpecError with every problem found."""
    if file.endswith(".json") and "\t" in text:
        # YAML forbids tab indentation; in valid JSON a raw tab can only be whitespace,
        # so a space keeps every line and column where it was.
        text = text.replace("\t", " ")
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
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
    errors: list[Diagnostic] = []
    doc.data = _walk(loader, node, (), file, doc, errors)
    if errors:
        raise SpecError(errors)
    return doc


def _raise_json_error(text: str, file: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError.single(
            Diagnostic(file, exc.lineno, exc.colno, "<document>", f"invalid JSON: {exc.msg}")
        ) from None


def _walk(
    loader,
    node,
    path: Path,
    file: str,
    doc: Document,
    errors: list[Diagnostic],
    stack: tuple[int, ...] = (),
) -> Any:
    doc.values[path] = _pos(file, node)
    if id(node) in stack:  # an alias inside its own anchor: `x: &a [*a]`
        errors.append(
            _diag(
                _pos(file, node),
                path,
                "recursive YAML alias",
                hint="An anchor cannot contain an alias to itself.",
            )
        )
        return None
    stack = (*stack, id(node))
    if isinstance(node, yaml.MappingNode):
        if node.tag != _CORE + "map":
            return _bad_tag(node, path, file, errors)
        explicit = {id(k) for k, _ in node.value if k.tag != _CORE + "merge"}
        try:
            loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys (listed first)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            pos = (file, mark.line + 1, mark.column + 1) if mark else _pos(file, node)
            errors.append(
                _diag(
                    pos,
                    path,
                    f"invalid merge key: {exc.problem or exc.context}",
                    hint="`<<:` takes an alias to a mapping, or a list of them.",
                )
            )
            return None
        explicit_keys = {_plain_key(loader, k) for k, _ in node.value if id(k) in explicit}
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(_diag(_pos(file, key_node), path, "mapping keys must be plain names"))
                continue
            key = _scalar(loader, key_node, path, file, errors)
            if not isinstance(key, str | int):
                key = str(key)
            merged = id(key_node) not in explicit
            if merged and (key in explicit_keys or key in out):
                continue  # explicit keys override merged ones; earlier merges win
            if key in out:
                errors.append(
                    _diag(
                        _pos(file, key_node),
                        (*path, key),
                        f"duplicate key '{key}'",
                        hint="Each key may appear once per mapping; remove one.",
                    )
                )
                continue
            doc.keys[(*path, key)] = _pos(file, key_node)
            out[key] = _walk(loader, value_node, (*path, key), file, doc, errors, stack)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _CORE + "seq":
            return _bad_tag(node, path, file, errors)
        return [
            _walk(loader, v, (*path, i), file, doc, errors, stack) for i, v in enumerate(node.value)
        ]
    return _scalar(loader, node, path, file, errors)


def _plain_key(loader, node) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
        key = loader.construct_object(node, deep=True)
        return key if isinstance(key, str | int) else str(key)
    return None


def parse_value(text: str) -> Any:
    """One `--set` value, read with the same safe rules as spec files (1e-3 is a float)."""
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _scalar(loader, node, path: Path, file: str, errors: list[Diagnostic]) -> Any:
    if node.tag not in _SCALAR_TAGS:
        return _bad_tag(node, path, file, errors)
    return loader.construct_object(node, deep=True)


def _bad_tag(node, path: Path, file: str, errors: list[Diagnostic]) -> None:
    tag = node.tag.replace(_CORE, "!!")
    errors.append(
        _diag(
            _pos(file, node),
            path,
            f"YAML tag '{tag}' is not allowed: specs are data, never code",
            received=tag,
            hint="Remove the tag and write the value as plain YAML.",
        )
    )
    return None
