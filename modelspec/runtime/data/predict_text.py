"""`modelspec predict --input` for models that read raw text: `.txt` files and folders
of them, one text per file, read exactly as the spec's `text_folder` source reads its
training texts (UTF-8, line endings, `max_length`), so predictions see what training
saw. An `.npz` holding a string array works too (`predict_inputs.read_inputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from modelspec.errors import DataError, Diagnostic
from modelspec.runtime.data.folders import Confinement, FolderError, folder_files
from modelspec.runtime.data.text_folder import load_texts
from modelspec.schema.data import DataSpec, TextFolderSource
from modelspec.schema.tensors import TensorType

TEXT_EXTENSIONS = (".txt",)
"""Keras's `text_dataset_from_directory` reads only these."""


def is_text_model(types: dict[str, TensorType]) -> bool:
    """Whether the model reads one input, and it is raw text."""
    return len(types) == 1 and next(iter(types.values())).dtype == "string"


def is_text_input(paths: Sequence[Path], types: dict[str, TensorType]) -> bool:
    """Whether `--input` names text files/folders for a text model (not one `.npz`)."""
    return is_text_model(types) and not (len(paths) == 1 and paths[0].suffix == ".npz")


def text_input_files(paths: Sequence[Path]) -> tuple[list[str], list[str]]:
    """(text files in order, problems): a folder's `.txt` files in Keras's order, then
    each named file in the order given."""
    files: list[str] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found: list[FolderError] = []
            box = Confinement(None)
            files += folder_files(str(path), False, box, found, extensions=TEXT_EXTENSIONS)
            problems += [exc.message for exc in found]
        elif not path.exists():
            problems.append(f"{str(path)!r} was not found")
        elif not path.name.lower().endswith(TEXT_EXTENSIONS):
            problems.append(
                f"{str(path)!r} is not a text file (.txt); pass .txt files and folders, or "
                "one .npz with a string array named after the input"
            )
        else:
            files.append(str(path))
    return files, problems


def read_text_inputs(
    paths: Sequence[Path], types: dict[str, TensorType], data: DataSpec | None
) -> dict[str, np.ndarray]:
    """The model's text input from `.txt` files and folders (one text per file)."""
    where = ", ".join(str(p) for p in paths)

    def fail(messages: list[str], hint: str | None = None) -> NoReturn:
        raise DataError([Diagnostic(where, 0, 0, "--input", m, hint=hint) for m in messages])

    files, problems = text_input_files(paths)
    if problems:
        fail(problems)
    if not files:
        fail(["no text files (.txt) found"])
    source = data.train if data is not None else None
    max_length = source.max_length if isinstance(source, TextFolderSource) else None
    texts, bad = load_texts(files, max_length)
    if bad:
        fail([exc.message for exc in bad])
    (name,) = types
    return {name: texts}


__all__ = ["is_text_input", "is_text_model", "read_text_inputs", "text_input_files"]
