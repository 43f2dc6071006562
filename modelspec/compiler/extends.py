"""`extends:` — reading a spec file and the base specs it names, confined and bounded.

A spec names its bases by path, so reading them is the one place where a spec makes
modelspec open other files. Bases must be regular files inside the spec's folder or its
repository (unless the user passes `--allow-outside`), small, few and not too deeply
chained; a base that is not a spec is refused without echoing what it holds.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from modelspec.compiler.compose import merge
from modelspec.compiler.yaml_positions import Document, line_col, parse_text
from modelspec.errors import Diagnostic, Path, Pos, SpecError, format_path, short_repr
from modelspec.schema.spec import Spec

_SECTIONS = {
    *Spec.model_fields,
    *(f.alias for f in Spec.model_fields.values() if f.alias),
    "extends",
    "blocks",
}


MAX_SPEC_BYTES = 512 << 10
"""Largest spec file read (512 KiB): real specs are a few KiB; the cap bounds what a
mistaken path (a log, a dataset, /dev/zero) can cost."""
MAX_TOTAL_BYTES = 1 << 20
"""Most bytes one spec may read with all its bases (1 MiB), so a fan-out of large bases
costs no more than two large files."""
MAX_EXTENDS_DEPTH = 16
"""Longest `extends` chain (a file, its base, that base's base, ...)."""
MAX_EXTENDS_FILES = 64
"""Most files one spec may read through `extends` in all (lists of bases included)."""

_allow_outside: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "modelspec_allow_outside", default=False
)


@contextlib.contextmanager
def extends_anywhere(enabled: bool = True) -> Iterator[None]:
    """Within this context, `extends` may name regular files outside the spec's tree
    (the CLI's `--allow-outside`). Special files stay refused. Nesting only widens:
    an inner `extends_anywhere(False)` keeps an outer permission."""
    token = _allow_outside.set(enabled or _allow_outside.get())
    try:
        yield
    finally:
        _allow_outside.reset(token)


def outside_allowed() -> bool:
    """Whether `extends_anywhere` is on: data sources that read folders named by a spec
    (`image_folder`) apply the same confinement, lifted by the same `--allow-outside`."""
    return _allow_outside.get()


def extends_root(spec_file: FsPath) -> FsPath:
    """The tree `extends` may read from: the repository that holds the spec (the nearest
    folder above it with a `.git`), or else the spec's own folder."""
    folder = spec_file.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


@dataclass
class _Chain:
    """What one `read_document` call has read so far (cycles, depth, file count)."""

    root: FsPath
    allow_outside: bool
    files: list[FsPath] = field(default_factory=list)
    read: int = 0
    bytes: int = 0


def read_document(file: FsPath, _chain: tuple[FsPath, ...] = ()) -> Document:
    """Read a spec file and everything it `extends`, merged.

    `extends` is confined: a base must be a regular file inside `extends_root` of the
    spec named on the command line (unless `extends_anywhere` is on), at most
    `MAX_SPEC_BYTES` long, at most `MAX_EXTENDS_DEPTH` deep and `MAX_EXTENDS_FILES` in
    all. A base that is not a spec at all is refused without echoing its content."""
    file = FsPath(file)
    chain = _Chain(extends_root(file), _allow_outside.get())
    return _read(file.resolve(), chain, (), None)


def _read(file: FsPath, chain: _Chain, stack: tuple[FsPath, ...], at: Pos | None) -> Document:
    shown = _display(file)
    chain.read += 1
    data = _read_bytes(file, shown, base_at=at)
    chain.bytes += len(data)
    if chain.bytes > MAX_TOTAL_BYTES:
        raise SpecError.single(
            Diagnostic.at(
                at or (shown, 0, 0),
                "extends",
                f"`extends` reads more than {MAX_TOTAL_BYTES >> 10} KiB of specs in all",
                hint="Specs are small; merge or shrink the bases.",
            )
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = line_col(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise SpecError.single(
            Diagnostic(
                shown,
                line,
                col,
                "<file>",
                f"not a UTF-8 text file (byte {exc.start})",
                hint="Specs are YAML or JSON text in UTF-8.",
            )
        ) from None
    doc = parse_text(text, shown)
    if not isinstance(doc.data, dict):
        raise SpecError.single(
            Diagnostic(
                shown,
                1,
                1,
                "<document>",
                "a spec must be a mapping of sections",
                received=type(doc.data).__name__,
            )
        )
    if stack and not set(doc.data) & _SECTIONS:
        raise SpecError.single(
            Diagnostic(
                *at,
                "extends",
                f"{shown} is not a modelspec spec: none of its top-level keys is a spec section",
                hint="`extends` names another spec file (with `model:`, `data:`, ...).",
            )
        )
    bases = doc.data.pop("extends", None)
    if bases is None:
        return doc
    names = bases if isinstance(bases, list) else [bases]
    merged: Document | None = None
    for i, name in enumerate(names):
        where = ("extends", i) if isinstance(bases, list) else ("extends",)
        pos = doc.values.get(where, (shown, 1, 1))
        base_file = _base_file(name, file, pos, where, chain, (*stack, file))
        base = _read(base_file, chain, (*stack, file), pos)
        merged = base if merged is None else merge(merged, base)
    if merged is None:
        raise SpecError.single(
            Diagnostic(
                *doc.values.get(("extends",), (shown, 1, 1)),
                "extends",
                "is empty",
                hint="Name a base spec file, or remove `extends`.",
            )
        )
    return merge(merged, doc)


def _base_file(
    name: Any, file: FsPath, pos: Pos, where: Path, chain: _Chain, stack: tuple[FsPath, ...]
) -> FsPath:
    """Resolve and vet one `extends` entry before anything of it is read."""

    def fail(message: str, hint: str | None = None, received: str | None = None) -> SpecError:
        return SpecError.single(
            Diagnostic(*pos, format_path(where), message, received=received, hint=hint)
        )

    if not isinstance(name, str) or not name.strip():
        raise fail("must be a file path", received=short_repr(name))
    try:
        base = (file.parent / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        reason = "a loop of symbolic links" if "loop" in str(exc).lower() else str(exc)
        raise fail(
            f"cannot resolve the base spec's path ({reason})", received=short_repr(name)
        ) from None
    if base in stack:
        cycle = " -> ".join(_display(f) for f in (*stack, base))
        raise fail(f"`extends` cycle: {cycle}")
    if len(stack) >= MAX_EXTENDS_DEPTH:
        raise fail(
            f"`extends` chain is deeper than {MAX_EXTENDS_DEPTH} files",
            hint="Merge some of the intermediate bases into one file.",
        )
    if chain.read >= MAX_EXTENDS_FILES:
        raise fail(
            f"`extends` reads more than {MAX_EXTENDS_FILES} files in all",
            hint="Use fewer bases; each one may itself extend others.",
        )
    if not chain.allow_outside and not base.is_relative_to(chain.root):
        raise fail(
            f"`extends` may only name files inside {chain.root} (the spec's "
            "folder, or the repository that holds it)",
            received=short_repr(name),
            hint="Move the base spec into the tree, or pass --allow-outside to let "
            "`extends` read files elsewhere.",
        )
    try:
        mode = os.stat(base).st_mode
    except FileNotFoundError:
        raise fail(
            "base spec not found",
            received=short_repr(name),
            hint="Paths are relative to this file.",
        ) from None
    except OSError as exc:
        raise fail(
            f"cannot read the base spec: {exc.strerror or exc}", received=short_repr(name)
        ) from None
    if not stat.S_ISREG(mode):
        raise fail(
            f"the base spec is not a regular file (it is {_file_kind(mode)})",
            received=short_repr(name),
            hint="`extends` names a spec file.",
        )
    return base


def _file_kind(mode: int) -> str:
    for test, word in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a plain file"


def _read_bytes(file: FsPath, shown: str, base_at: Pos | None) -> bytes:
    """At most MAX_SPEC_BYTES of a file, opened without blocking (a FIFO named on the
    command line does not hang the reader); bases must be regular files."""
    where = base_at or (shown, 0, 0)
    path = "extends" if base_at else "<file>"
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SpecError.single(
            Diagnostic(*where, path, f"cannot read {shown}: {exc.strerror or exc}")
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if base_at and not stat.S_ISREG(mode):
            raise SpecError.single(
                Diagnostic(*where, path, f"{shown} is not a regular file ({_file_kind(mode)})")
            )
        if stat.S_ISDIR(mode):
            raise SpecError.single(
                Diagnostic(*where, path, f"{shown} is a folder, not a spec file")
            )
        chunks, size = [], 0
        while size <= MAX_SPEC_BYTES:
            try:
                chunk = os.read(fd, min(1 << 16, MAX_SPEC_BYTES + 1 - size))
            except BlockingIOError:
                raise SpecError.single(
                    Diagnostic(*where, path, f"{shown} has nothing to read (a pipe with no writer)")
                ) from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SpecError.single(
            Diagnostic(*where, path, f"cannot read {shown}: {exc.strerror or exc}")
        ) from None
    finally:
        os.close(fd)
    if size > MAX_SPEC_BYTES:
        if base_at is None:  # point at the line where the file passes the limit
            head = b"".join(chunks)[:MAX_SPEC_BYTES].decode("utf-8", "replace")
            where = (shown, *line_col(head, len(head)))
        raise SpecError.single(
            Diagnostic(
                *where,
                path,
                f"{shown} is larger than {MAX_SPEC_BYTES >> 10} KiB, the limit for a spec file",
                hint="A spec is a small YAML or JSON text; data belongs in `data:` files.",
            )
        )
    return b"".join(chunks)


def _display(file: FsPath) -> str:
    try:
        return str(file.relative_to(FsPath.cwd()))
    except ValueError:
        return str(file)
