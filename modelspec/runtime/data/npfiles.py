"""Reading NumPy `.npy` files and `.npz` archives without trusting them.

`np.load` is the wrong tool for data files from elsewhere: it ignores `mmap_mode` for
`.npz` members (a 3 MB compressed archive of zeros decompresses into 8 GB of memory),
and what it refuses it refuses with tracebacks. Here each array's `.npy` header (shape
and dtype, the first bytes) is read before any of its data, so problems are found
early and memory stays bounded:

- object arrays are refused from the header, without unpickling anything;
- `.npy` files and uncompressed (`np.savez`) members are memory-mapped, the latter
  straight from their offset in the archive: batches then read only their rows;
- compressed (`np.savez_compressed`) members cannot be mapped and are decompressed
  into memory only up to `MAX_DECOMPRESSED_BYTES` each, and never past the size their
  header declares, which also bounds what a zip bomb can cost.

Errors are `ArrayFileError`s in the user's terms; callers add which file and which
spec field or command-line option they come from.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

MAX_DECOMPRESSED_BYTES = 1 << 30
"""The most one compressed `.npz` member may take once decompressed (1 GiB)."""

_CHUNK = 16 << 20
"""Bytes decompressed per read: bounds the transient copies next to the result."""
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_LOCAL_HEADER = b"PK\x03\x04"
_SAVE_HINT = "Write it with np.savez(path, name=array), or np.save(path, array) for one array."
_BIG_HINT = (
    "Save it with np.savez (uncompressed) or as .npy files (`type: npy`): those are "
    "memory-mapped, and batches read only their rows."
)


class ArrayFileError(Exception):
    """What is wrong with a file or an array in it, in the user's terms, with a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Header:
    """An `.npy` header: what the data is, and where it starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    length: int
    """Bytes from the start of the `.npy` data stream to its first array byte."""

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def file_kind(path: Path) -> Literal["npy", "npz"]:
    """Whether `path` is an `.npy` file or a zip (`.npz`) archive, from its first bytes
    (not its name); anything else is an `ArrayFileError`."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(6)
    except OSError as exc:
        raise ArrayFileError(f"could not read {str(path)!r}: {exc.strerror or exc}") from None
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head[:4] in _ZIP_MAGICS:
        return "npz"
    raise ArrayFileError(
        f"could not read {str(path)!r}: it is neither a NumPy .npz archive nor an .npy file",
        hint=_SAVE_HINT,
    )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def read_header(handle: BinaryIO, what: str) -> Header:
    """Parse the `.npy` header at the start of `handle`; refuse object dtypes here,
    before a single data byte (or pickle) is read."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(handle)
        else:
            raise ArrayFileError(
                f"{what} uses .npy format version {version[0]}.{version[1]}, which "
                "modelspec does not read (it is written only for unusual structured dtypes)",
                hint="Save plain numeric arrays.",
            )
    except ArrayFileError:
        raise
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArrayFileError(f"{what} has no valid .npy header: {exc}", _SAVE_HINT) from None
    if dtype.hasobject:
        raise ArrayFileError(
            f"{what} holds Python objects (dtype {dtype}); reading it would mean "
            "unpickling code from the file, which modelspec never does",
            hint="Save numeric arrays instead, e.g. np.asarray(values, dtype=np.float32).",
        )
    return Header(tuple(int(d) for d in shape), dtype, bool(fortran), handle.tell())


def _map(path: Path, head: Header, offset: int) -> np.ndarray:
    if head.nbytes == 0:  # mmap cannot map zero bytes
        return np.empty(head.shape, head.dtype)
    order = "F" if head.fortran else "C"
    return np.memmap(path, head.dtype, mode="r", offset=offset, shape=head.shape, order=order)


def load_npy(path: Path, what: str) -> np.ndarray:
    """The array of an `.npy` file, memory-mapped read-only."""
    try:
        with open(path, "rb") as handle:
            head = read_header(handle, what)
        size = path.stat().st_size
    except OSError as exc:
        raise ArrayFileError(f"could not read {what}: {exc.strerror or exc}") from None
    if size - head.length < head.nbytes:
        raise ArrayFileError(
            f"{what} is truncated: its header promises shape {head.shape} of {head.dtype} "
            f"({head.nbytes} bytes) but the file holds {size - head.length} data bytes",
            hint="Write the file again.",
        )
    return _map(path, head, head.length)


class NpzArchive:
    """An `.npz` archive opened for reading single arrays (a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ArrayFileError(
                f"could not read {str(path)!r} as an .npz archive: {exc}", hint=_SAVE_HINT
            ) from None
        self._members = {
            info.filename[:-4]: info
            for info in self._zip.infolist()
            if info.filename.endswith(".npy") and not info.is_dir()
        }

    @property
    def names(self) -> list[str]:
        """The array names, in archive order."""
        return list(self._members)

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def header(self, name: str) -> Header:
        """Shape and dtype of array `name`, from its header alone."""
        info = self._members[name]
        what = f"array {name!r}"
        if info.flag_bits & 0x1:
            raise ArrayFileError(f"{what} is encrypted", hint=_SAVE_HINT)
        try:
            with self._zip.open(info) as handle:
                head = read_header(handle, what)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
            raise ArrayFileError(f"could not read {what}: {exc}", hint=_SAVE_HINT) from None
        if info.file_size != head.length + head.nbytes:
            raise ArrayFileError(
                f"{what} is damaged: its header promises shape {head.shape} of "
                f"{head.dtype} ({head.nbytes} bytes) but the archive lists "
                f"{info.file_size - head.length} data bytes",
                hint="Write the archive again with np.savez.",
            )
        return head

    def load(self, name: str) -> np.ndarray:
        """Array `name`: memory-mapped when stored uncompressed, else decompressed into
        memory if it takes at most `MAX_DECOMPRESSED_BYTES`."""
        head = self.header(name)
        info = self._members[name]
        if head.nbytes == 0:
            return np.empty(head.shape, head.dtype)
        if info.compress_type == zipfile.ZIP_STORED:
            return _map(self.path, head, self._data_offset(info, name) + head.length)
        if head.nbytes > MAX_DECOMPRESSED_BYTES:
            raise ArrayFileError(
                f"array {name!r} is compressed and takes {_size(head.nbytes)} once "
                f"decompressed (shape {head.shape} of {head.dtype}), over the "
                f"{_size(MAX_DECOMPRESSED_BYTES)} modelspec decompresses into memory",
                hint=_BIG_HINT,
            )
        return self._inflate(info, head, name)

    def _data_offset(self, info: zipfile.ZipInfo, name: str) -> int:
        """Where a stored member's bytes start: after its local header, whose name and
        extra fields may differ in length from the central directory's."""
        with open(self.path, "rb") as handle:
            handle.seek(info.header_offset)
            fixed = handle.read(zipfile.sizeFileHeader)
            size = handle.seek(0, 2)
        if len(fixed) < zipfile.sizeFileHeader or not fixed.startswith(_LOCAL_HEADER):
            raise ArrayFileError(f"array {name!r} is damaged (bad local zip header)")
        name_len, extra_len = struct.unpack("<HH", fixed[26:30])
        start = info.header_offset + zipfile.sizeFileHeader + name_len + extra_len
        if start + info.file_size > size:
            raise ArrayFileError(
                f"array {name!r} is truncated: the archive ends before its data does",
                hint="Write the archive again with np.savez.",
            )
        return start

    def _inflate(self, info: zipfile.ZipInfo, head: Header, name: str) -> np.ndarray:
        out = np.empty(head.nbytes, dtype=np.uint8)
        view, got = memoryview(out), 0
        try:
            with self._zip.open(info) as handle:
                handle.read(head.length)
                while got < head.nbytes:
                    n = handle.readinto(view[got : got + _CHUNK])
                    if not n:
                        break
                    got += n
                extra = handle.read(1)  # reaching the end makes zipfile check the CRC
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ArrayFileError(
                f"array {name!r} is damaged: {exc}", hint="Write the archive again."
            ) from None
        if got < head.nbytes or extra:
            raise ArrayFileError(
                f"array {name!r} is damaged: its data does not match the "
                f"{head.nbytes} bytes its header promises",
                hint="Write the archive again with np.savez.",
            )
        order = "F" if head.fortran else "C"
        return out.view(head.dtype).reshape(head.shape, order=order)
