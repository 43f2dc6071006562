"""Class-folder datasets shared by `image_folder` and `text_folder`: Keras's
`dataset_utils.index_directory(labels="inferred")` without TensorFlow.

The class folders are the subfolders of `directory` not starting with `.`, sorted (or
`class_names`, in that order); below each, every file whose lower-cased name ends in one
of the source's `extensions` is an example, walked as `os.walk` does (recursively;
symlinked subfolders only with `follow_links`) and ordered by folder path, then file
name. Unlike Keras, a folder or file outside the spec's tree, an unreadable folder and a
symlink loop are reported (as `FolderError`s naming the path) instead of being walked
or skipped silently. Also here: Keras's label encodings and the report helper both
readers use, so the two readers differ only in how one file is decoded.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.errors import choices_hint, short_repr
from modelspec.runtime.data.raw import RawSource, ReadContext, resolve

MAX_LISTED = 10
"""Bad files reported by name; the rest are counted."""


class FolderError(Exception):
    """A file or folder that cannot be used, in the user's terms."""

    def __init__(self, message: str, hint: str | None = None, field: str = "directory") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field
        """The source field the error is positioned on."""


@dataclass
class FolderIndex:
    """What indexing a folder found: files in Keras's order and their labels."""

    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    """Class folders holding no file with an allowed extension."""
    problems: list[FolderError] = field(default_factory=list)


@dataclass(frozen=True)
class Confinement:
    """Where files may be read from: inside `root` (the spec's folder or repository),
    judged by the real path, unless `anywhere` (`--allow-outside`)."""

    root: Path | None

    def check(self, path: str, what: str) -> None:
        if self.root is None:
            return
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            target = "" if real == Path(os.path.abspath(path)) else f" (it points to {real})"
            raise FolderError(
                f"{what} {path!r} is outside {self.root}{target}, the spec's folder or the "
                "repository that holds it",
                hint="Move the data into the tree, or pass --allow-outside.",
            )


def confinement(base_dir: Path) -> Confinement:
    """The same tree `extends` is confined to, lifted by the same `--allow-outside`."""
    from modelspec.compiler.extends import extends_root, outside_allowed

    return Confinement(None if outside_allowed() else extends_root(Path(base_dir) / "spec"))


def _walk(top: str, follow_links: bool, box: Confinement, problems: list[FolderError]):
    """(folder, file names) of every folder `os.walk(top, followlinks=follow_links)`
    visits, sorted by folder path as Keras sorts them. Unlike os.walk, an unreadable
    folder, a folder or file outside the tree and a symlink loop are reported."""
    found: list[tuple[str, list[str]]] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(top, ())]
    while stack:
        folder, parents = stack.pop()
        real = os.path.realpath(folder)
        if real in parents:
            problems.append(FolderError(f"symlink loop at {folder!r} (it points to {real})"))
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(FolderError(f"cannot read folder {folder!r}: {exc.strerror or exc}"))
            continue
        names = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            path = os.path.join(folder, entry.name)
            if is_dir and (follow_links or not entry.is_symlink()):
                try:
                    box.check(path, "folder")
                except FolderError as exc:
                    problems.append(exc)
                    continue
                stack.append((path, (*parents, real)))
            elif not is_dir:
                names.append(entry.name)
        found.append((folder, names))
    found.sort(key=lambda item: item[0])
    return found


def folder_files(
    top: str,
    follow_links: bool,
    box: Confinement,
    problems: list[FolderError],
    *,
    extensions: tuple[str, ...],
) -> list[str]:
    """The files below `top` whose lower-cased name ends in one of `extensions`, in
    Keras's order (`iter_valid_files`)."""
    files = []
    for folder, names in _walk(top, follow_links, box, problems):
        for name in sorted(names):
            if name.lower().endswith(extensions):
                path = os.path.join(folder, name)
                try:
                    box.check(path, "file")
                except FolderError as exc:
                    problems.append(exc)
                    continue
                files.append(path)
    return files


def class_folders(directory: str, class_names: list[str] | None) -> list[str]:
    """The class folders in label order: Keras's sorted non-hidden subfolders, or the
    given `class_names` (which must all be subfolders)."""
    try:
        subdirs = [
            name
            for name in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")
        ]
    except OSError as exc:
        raise FolderError(f"cannot read folder {directory!r}: {exc.strerror or exc}") from None
    if class_names is None:
        return subdirs
    missing = [name for name in class_names if name not in subdirs]
    if missing:
        raise FolderError(
            f"class {missing[0]!r} has no subfolder in {directory!r}",
            hint=choices_hint(missing[0], subdirs) if subdirs else "The folder has no subfolders.",
            field="class_names",
        )
    return list(class_names)


def index_folder(source: Any, base_dir: Path, box: Confinement) -> FolderIndex:
    """Index `source.directory` as Keras's `index_directory(labels="inferred")` does,
    keeping the files whose extension is in the source kind's `extensions`."""
    directory = str(resolve(base_dir, source.directory))
    index = FolderIndex()
    if not os.path.isdir(directory):
        what = "is not a folder" if os.path.exists(directory) else "was not found"
        raise FolderError(
            f"{directory!r} {what}",
            hint="Relative paths are resolved against the spec file's directory.",
        )
    box.check(directory, "folder")
    index.class_names = class_folders(directory, source.class_names)
    for label, name in enumerate(index.class_names):
        top = os.path.join(directory, name)
        try:
            box.check(top, "class folder")
        except FolderError as exc:
            index.problems.append(exc)
            continue
        files = folder_files(
            top, source.follow_links, box, index.problems, extensions=source.extensions
        )
        if not files:
            index.empty.append(name)
        index.files += files
        index.labels += [label] * len(files)
    return index


def encode_labels(labels: list[int], label_mode: str, num_classes: int) -> np.ndarray:
    """Keras's label encodings: int32 indices, float32 one-hot, or float32 (N, 1)."""
    index = np.asarray(labels, dtype=np.int32)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[index]
    if label_mode == "binary":
        return index.astype(np.float32)[:, np.newaxis]
    return index


def report_problems(raw: RawSource, ctx: ReadContext, problems: list[FolderError]) -> None:
    """Report the first `MAX_LISTED` problems on their fields, and count the rest."""
    for exc in problems[:MAX_LISTED]:
        ctx.rep.error((*raw.where, exc.field), f"{raw.label}: {exc.message}", hint=exc.hint)
    if len(problems) > MAX_LISTED:
        ctx.rep.error(
            (*raw.where, "directory"),
            f"{raw.label}: {len(problems) - MAX_LISTED} more such problems",
        )


def read_index(
    raw: RawSource, ctx: ReadContext, source: Any, what: str, hint: str
) -> FolderIndex | None:
    """The source's folder index, or None after reporting why it cannot be used: folder
    problems (outside the tree, unreadable, loops), no `what` files at all, `binary`
    labels without exactly two classes, or an empty class folder."""
    try:
        index = index_folder(source, ctx.base_dir, confinement(ctx.base_dir))
    except FolderError as exc:
        report_problems(raw, ctx, [exc])
        return None
    if index.problems:
        report_problems(raw, ctx, index.problems)
        return None
    if not index.files:
        ctx.rep.error(
            (*raw.where, "directory"),
            f"{raw.label}: no {what} found in {len(index.class_names)} class folder(s)",
            received=short_repr(index.class_names),
            hint=hint,
        )
        return None
    if source.label_mode == "binary" and len(index.class_names) != 2:
        ctx.rep.error(
            (*raw.where, "label_mode"),
            f"{raw.label}: label_mode 'binary' needs exactly 2 classes, found "
            f"{len(index.class_names)}",
            received=short_repr(index.class_names),
            hint="Use label_mode: int or categorical, or list two `class_names`.",
        )
        return None
    if empty_classes(raw, ctx, source, index, what):
        return None
    return index


def empty_classes(
    raw: RawSource, ctx: ReadContext, source: Any, index: FolderIndex, what: str
) -> bool:
    """Report class folders without a single `what` file; True when there are any.

    Keras keeps such a folder as a class that no example has, silently; it is almost
    always a copy that went wrong, and a class the model can never learn, so it is an
    error here naming the folder — unless `class_names` lists it, which says the user
    wants that label anyway (then a warning)."""
    listed = set(source.class_names or ())
    wanted = [name for name in index.empty if name in listed]
    for name in wanted:
        print(
            f"Warning: {raw.label}: class folder {name!r} holds no {what}; it keeps its "
            "label (as listed in class_names) but no example has it.",
            file=sys.stderr,
        )
    missing = [name for name in index.empty if name not in listed]
    directory = str(resolve(ctx.base_dir, source.directory))
    for name in missing:
        ctx.rep.error(
            (*raw.where, "directory"),
            f"{raw.label}: class folder {os.path.join(directory, name)!r} holds no {what}, "
            "so no example has its label",
            hint="Add files to it, delete it, or list it in `class_names` to keep an empty "
            "class on purpose.",
        )
    return bool(missing)


def folder_class_names(
    source: Any, base_dir: Path, outputs: list[str]
) -> dict[str, tuple[list[str], str]]:
    """The class folders of a class-folder source, naming the labels of the model's one
    output (for the run's `class_names.json`)."""
    directory = str(resolve(base_dir, source.directory))
    return {outputs[0]: (class_folders(directory, source.class_names), source.label_mode)}
