"""Reading text files strictly as UTF-8, for the text sources (`text_folder`, `csv`,
`jsonl`): a file that is not UTF-8 is an error naming the file, the byte offset and the
line of the first bad byte, instead of Python's bare `UnicodeDecodeError` (or, worse,
text silently decoded with the wrong codec)."""

from __future__ import annotations

import os
from pathlib import Path

MAX_TEXT_BYTES = 1 << 30
"""Most bytes one text source reads into memory (1 GiB)."""


class TextFileError(Exception):
    """A text file that cannot be read, in the user's terms (the message names it)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def decode_utf8(data: bytes, name: str, *, bom: bool = False) -> str:
    """`data` decoded as UTF-8 (skipping a leading byte-order mark when `bom`);
    `TextFileError` naming `name`, the offset and the line of the first undecodable byte."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end]
        raise TextFileError(
            f"{name!r} is not UTF-8 text: cannot decode byte 0x{bad[0]:02x} at offset "
            f"{exc.start} (line {line}): {exc.reason}",
            hint="Re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).",
        ) from None


def read_utf8(path: str | Path, *, bom: bool = False, limit: int = MAX_TEXT_BYTES) -> str:
    """The file at `path` as UTF-8 text (see `decode_utf8`); `TextFileError` when it
    cannot be read or holds more than `limit` bytes."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise TextFileError(
                    f"{name!r} holds {size / 2**20:.0f} MiB, over the {limit >> 20} MiB a text "
                    "source may read into memory",
                    hint="Split the data, or convert it to .npy arrays (`type: npy`).",
                )
            data = handle.read()
    except OSError as exc:
        raise TextFileError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    return decode_utf8(data, name, bom=bom)
