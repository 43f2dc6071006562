"""The `text_folder` data source: Keras's `text_dataset_from_directory`, without
TensorFlow.

Indexing is the shared class-folder walk (`folders`, Keras's `index_directory`) with
Keras's `.txt` allowlist. Each file is read as Keras's TensorFlow-free (grain) loader
reads it, `open(path, "r").read()[:max_length]` on a UTF-8 system: universal newlines,
then cut to `max_length` characters; but strictly as UTF-8, so a file in another
encoding is an error naming it and the byte offset instead of a crash mid-epoch (or
text decoded with the machine's locale). Every file is read before step 1, at most
`MAX_TEXT_BYTES` in all. The texts feed the model's one `string` input as a NumPy
object array of `str`; the labels are encoded as for images.
"""

from __future__ import annotations

import os

import numpy as np

from modelspec.runtime.data.folders import (
    FolderError,
    encode_labels,
    read_index,
    report_problems,
)
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext
from modelspec.runtime.data.utf8 import MAX_TEXT_BYTES, TextFileError, read_utf8
from modelspec.schema.data import TextFolderSource


def read_text(path: str, max_length: int | None) -> str:
    """One text file as Keras's grain loader returns it (`\\r\\n` and `\\r` read as
    `\\n`, cut to `max_length` characters); `FolderError` when it is not UTF-8."""
    try:
        text = read_utf8(path)
    except TextFileError as exc:
        raise FolderError(exc.message, hint=exc.hint) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if max_length is None else text[:max_length]


def load_texts(files: list[str], max_length: int | None) -> tuple[np.ndarray, list[FolderError]]:
    """The files' texts as an object array of `str` (N,); problems returned, not raised."""
    texts = np.empty(len(files), dtype=object)
    problems = []
    for i, path in enumerate(files):
        try:
            texts[i] = read_text(path, max_length)
        except FolderError as exc:
            problems.append(exc)
    return texts, problems


def total_bytes(files: list[str]) -> int:
    """Bytes the files hold on disk (unreadable ones count 0: reading reports them)."""
    total = 0
    for path in files:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total


def read_text_folder(source: TextFolderSource, raw: RawSource, ctx: ReadContext) -> None:
    """Index, check and read a text folder into the model's one input and output."""
    names = ctx.single_input_output(source, raw)
    if names is None:
        return
    inp, out = names
    at = (*raw.where, "directory")
    index = read_index(raw, ctx, source, ".txt files", "Put .txt files in one subfolder per class.")
    if index is None:
        return
    need = total_bytes(index.files)
    if need > MAX_TEXT_BYTES:
        ctx.rep.error(
            at,
            f"{raw.label}: {len(index.files)} text files hold {need / 2**30:.1f} GiB, over "
            f"the {MAX_TEXT_BYTES >> 30} GiB modelspec reads into memory",
            hint="Use fewer or shorter files.",
        )
        return
    texts, problems = load_texts(index.files, source.max_length)
    if problems:
        report_problems(raw, ctx, problems)
        return
    want = ctx.model_inputs[inp].shape[1:]
    if tuple(want) == (1,):  # an input of shape [1]: one text per row
        texts = texts[:, np.newaxis]
    labels = encode_labels(index.labels, source.label_mode, len(index.class_names))
    raw.inputs[inp] = RawArray(texts, f"the texts of {source.directory!r}", at)
    raw.targets[out] = RawArray(labels, f"{source.label_mode} labels", (*raw.where, "label_mode"))
