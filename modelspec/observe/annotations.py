"""`check`'s errors for CI systems: GitHub Actions workflow commands and JSON.

GitHub turns a line `::error file=F,line=L,col=C,title=T::MESSAGE` printed by a step
into an annotation on that line of the pull request. Its escaping rules (from the
runner's `ActionCommand`): in the message `%`, CR and LF become `%25`, `%0D`, `%0A`;
in a property value also `:` and `,` (`%3A`, `%2C`), which would otherwise end it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelspec.errors import Diagnostic, printable

FORMATS = ("text", "github", "json")
"""The values of `check --format`."""


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (`file=`, `title=`), escaped."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def located_text(diag: Diagnostic) -> str:
    """The diagnostic's text without its `file:line:col: ` prefix (an annotation and a
    JSON record carry the position separately); not yet made printable, so that line
    breaks can be escaped as GitHub wants first."""
    text = f"{diag.path}: {diag.message.rstrip('.')}."
    if diag.received is not None:
        text += f" Received: {diag.received}."
    if diag.hint:
        text += f" {diag.hint}"
    return text


def github_annotation(diag: Diagnostic) -> str:
    """One `::error ...::message` line; a diagnostic without a position (line 0: a
    `--set` override, the devices) is annotated on the file alone. Control characters
    left after GitHub's escaping are shown escaped (`printable`): spec values must not
    drive the terminal of whoever reads the log."""
    props = [f"file={printable(escape_property(diag.file))}"]
    if diag.line:
        props += [f"line={diag.line}", f"col={diag.col}"]
    props.append("title=modelspec")
    return f"::error {','.join(props)}::{printable(escape_data(located_text(diag)))}"


def error_record(diag: Diagnostic) -> dict[str, Any]:
    """A diagnostic as a JSON object: position, spec path, message, received, hint
    (null when absent; line and col 0 when the problem has no position)."""
    return {
        "file": diag.file,
        "line": diag.line,
        "col": diag.col,
        "path": diag.path,
        "message": diag.message,
        "received": diag.received,
        "hint": diag.hint,
    }


def json_report(diagnostics: Iterable[Diagnostic]) -> dict[str, Any]:
    """`check --format json`'s one object: `ok` and every error of every spec."""
    errors = [error_record(d) for d in diagnostics]
    return {"ok": not errors, "errors": errors}
