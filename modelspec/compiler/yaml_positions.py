"""Safe YAML (and JSON) parsing that remembers where every value came from: the entry
points `parse_text` (a file) and `parse_value` (a `--set` value).

We compose PyYAML's node graph and walk it ourselves (`yaml_nodes`) instead of using
`yaml.safe_load`, so that each value and each mapping key keeps its (line, col), and
anything that is not plain data is refused *at its position* before anything could be
constructed. Hardened as hardened YAML loaders are: composing stops past `MAX_NESTING`
levels (instead of a RecursionError), the walk caps alias and merge repeats
(`MAX_ALIAS_VALUES`), and control characters — including the line breaks only YAML
knows (U+0085, U+2028, U+2029), which would shift every reported position — are
positioned errors.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import yaml

from modelspec.compiler.yaml_nodes import (
    CORE,
    MAX_NESTING,
    Document,
    Limit,
    Walk,
    too_deep,
    walk,
)
from modelspec.errors import Diagnostic, SpecError


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
                raise Limit(too_deep((self.file, mark.line + 1, mark.column + 1), ()))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_SpecLoader.add_implicit_resolver(
    CORE + "float",
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
    try:
        doc = _read(text, file)
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
    if doc is None:
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
    return doc


def parse_value(text: str, where: str) -> Any:
    """One `--set` value, read with the same safe rules and caps as spec files (1e-3 is
    a float; tags, alias bombs and recursive aliases refused). Raises yaml.YAMLError
    when it is not YAML at all, SpecError (positioned at `where`) when it is refused."""
    try:
        doc = _read(text, where)
    except SpecError as exc:  # a value has no lines: name the override instead
        raise SpecError([dataclasses.replace(d, line=0, col=0) for d in exc.diagnostics]) from None
    return None if doc is None else doc.data


def _read(text: str, file: str) -> Document | None:
    """Compose and walk one text (None when it is empty). Control characters and caps
    raise SpecError positioned in `text`; malformed YAML raises yaml.MarkedYAMLError."""
    odd = _YAML_ONLY_BREAKS.search(text)
    if odd is not None:
        raise SpecError.single(_control_at(file, *line_col(text, odd.start()), odd.group(0)))
    loader = None
    try:
        loader = _SpecLoader(text)
        loader.file = file
        node = loader.get_single_node()
        if node is None:
            return None
        doc = Document(None)
        state = Walk(loader, file, doc, [])
        try:
            doc.data = walk(state, node, (), ())
        except Limit as exc:
            state.errors.append(exc.diagnostic)
        if state.errors:
            raise SpecError(state.errors)
        return doc
    except yaml.reader.ReaderError as exc:
        raise SpecError.single(_control_character(text, file, exc)) from None
    except Limit as exc:
        raise SpecError.single(exc.diagnostic) from None
    finally:
        if loader is not None:
            loader.dispose()


def _control_character(text: str, file: str, exc: yaml.reader.ReaderError) -> Diagnostic:
    index = exc.position if isinstance(exc.position, int) else 0
    line, col = line_col(text, min(index, len(text)))
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return _control_at(file, line, col, char)


_YAML_ONLY_BREAKS = re.compile("[\x85\u2028\u2029]")
"""Characters YAML 1.1 reads as line breaks but editors and this reader's positions do
not: refused, so every reported line:col is where an editor shows it."""


def _control_at(file: str, line: int, col: int, char: str) -> Diagnostic:
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
