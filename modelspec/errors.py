"""User-facing errors: every problem with a spec or its data is a positioned diagnostic.

A `SpecError` carries *all* diagnostics found in one file so the CLI can print them at
once (exit code 2) instead of making the user fix them one run at a time. Nothing in
here imports JAX: errors are raised by the light paths (`check`, `summary`, `schema`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PathPart = str | int
Path = tuple[PathPart, ...]
Pos = tuple[str, int, int]
"""(file, line, col), 1-based; line 0 means 'no position' (e.g. a --set override)."""


class Locate(Protocol):
    """Where the value at a spec path was written (its key with `key=True`)."""

    def __call__(self, path: Path, key: bool = False) -> Pos: ...


def format_path(path: Sequence[PathPart]) -> str:
    """`('model', 'layers', 2, 'units')` -> `model.layers[2].units`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def printable(text: str) -> str:
    """`text` with every non-printable character escaped (`\\x1b`, `\\u200b`): values
    echoed from a spec must never drive the user's terminal (a key holding `ESC[2J`
    would clear it)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def short_repr(value: Any, limit: int = 60) -> str:
    """A compact repr for 'Received:' clauses (strings quoted, long values cut)."""
    text = repr(value) if isinstance(value, str) else _plain(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 1) -> str | None:
    """Nearest valid names to `word` (case-insensitive first), formatted as a hint."""
    choices = list(dict.fromkeys(str(c) for c in choices))
    if not isinstance(word, str) or not choices:
        return None
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        matches = [lowered[word.lower()]]
    else:
        matches = difflib.get_close_matches(word, choices, n=n, cutoff=0.6)
        if not matches:
            close = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
            matches = [lowered[m] for m in close]
    if not matches:
        return None
    return "Did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"


def choices_hint(word: Any, choices: Sequence[str], *, limit: int = 12) -> str:
    """`Did you mean 'x'?` when one is close, else the list of valid names."""
    hint = did_you_mean(word, choices) if isinstance(word, str) else None
    if hint:
        return hint
    shown = ", ".join(f"'{c}'" for c in list(choices)[:limit])
    more = f", ... ({len(choices)} in all)" if len(choices) > limit else ""
    return f"Valid values: {shown}{more}."


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located in a source file (line/col are 1-based; 0 = unknown)."""

    file: str
    line: int
    col: int
    path: str
    message: str
    received: str | None = None
    hint: str | None = None

    @classmethod
    def at(
        cls,
        pos: tuple[str, int, int],
        path: Sequence[PathPart] | str,
        message: str,
        received: str | None = None,
        hint: str | None = None,
    ) -> Diagnostic:
        """The one way to build a positioned diagnostic: `pos` is (file, line, col) as
        a source map's `locate` returns it; `path` a data path or its formatted form."""
        shown = path if isinstance(path, str) else format_path(path)
        return cls(pos[0], pos[1], pos[2], shown, message, received, hint)

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message.rstrip('.')}."
        if self.received is not None:
            text += f" Received: {self.received}."
        if self.hint:
            text += f" {self.hint}"
        return printable(text)


@dataclass
class SpecError(Exception):
    """All diagnostics of one spec (or data source). The CLI prints them and exits 2."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)

    @classmethod
    def single(cls, diagnostic: Diagnostic) -> SpecError:
        return cls([diagnostic])


class DataError(SpecError):
    """A problem with the data a spec points at, found before step 1."""


class AdaptError(ValueError):
    """Data that cannot give the state Keras's `adapt()` would learn with these layer
    arguments (an empty vocabulary, ...); `field` names the argument to change, and the
    runtime positions the error on it. Raised by host-side NumPy code (the adapters and
    the text layers), so it lives here, below both the compiler and the runtime."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.field, self.hint = message, field, hint
