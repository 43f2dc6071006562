"""Read a Keras 3 `.keras` archive as data: never Keras, never pickle, never its code.

The archive is a zip of `metadata.json`, `config.json` (the model's serialized config)
and `model.weights.h5`; each is size-capped before it is read, the JSON is parsed with
`json`, and the weights file is copied out (with its cap checked while copying, so a
zip bomb stops at the cap) for h5py to read its datasets by path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelspec.errors import Diagnostic, SpecError

MAX_ARCHIVE = 64 * 2**30
"""The largest archive read (bytes)."""
MAX_JSON = 64 * 2**20
"""The largest config.json / metadata.json read (bytes)."""
MAX_WEIGHTS = 64 * 2**30
"""The largest model.weights.h5 copied out (bytes)."""
MAX_MEMBERS = 100_000


@dataclass
class KerasArchive:
    """What an archive holds: its config and metadata as plain data, and the path of its
    weights file, copied into `workdir` (delete it with `close`)."""

    path: Path
    config: dict[str, Any]
    metadata: dict[str, Any]
    weights: Path | None
    workdir: Path
    assets: list[str]

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KerasArchive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def archive_error(path: Path, message: str, hint: str | None = None) -> SpecError:
    """A problem with the archive itself (it has no line numbers: the file is named)."""
    return SpecError.single(Diagnostic(str(path), 0, 0, "archive", message, hint=hint))


def read_archive(path: Path) -> KerasArchive:
    """Open and check the archive; the caller closes the result."""
    path = Path(path)
    if not path.is_file():
        raise archive_error(path, "no such file")
    if path.stat().st_size > MAX_ARCHIVE:
        raise archive_error(path, f"the archive is larger than {MAX_ARCHIVE >> 30} GiB")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise archive_error(
            path,
            f"not a Keras 3 .keras archive (a zip file): {exc}",
            hint="Keras 3 writes one with model.save('model.keras'); legacy .h5 and "
            "SavedModel directories are not read.",
        ) from None
    workdir = Path(tempfile.mkdtemp(prefix="modelspec-import-"))
    try:
        with archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise archive_error(path, f"the archive holds more than {MAX_MEMBERS} files")
            names = {i.filename for i in infos}
            if "config.json" not in names:
                raise archive_error(path, "the archive has no config.json: not a Keras 3 model")
            config = _json(archive, "config.json", path)
            metadata = _json(archive, "metadata.json", path) if "metadata.json" in names else {}
            weights = None
            if "model.weights.h5" in names:
                weights = workdir / "model.weights.h5"
                _copy(archive, "model.weights.h5", weights, path)
            elif "model.weights.json" in names:
                raise archive_error(
                    path,
                    "the weights are sharded (model.weights.json): not supported",
                    hint="Save the model unsharded: model.save('model.keras').",
                )
            assets = sorted(n for n in names if n.startswith("assets/"))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    if not isinstance(config, dict):
        shutil.rmtree(workdir, ignore_errors=True)
        raise archive_error(path, "config.json does not hold a serialized model")
    return KerasArchive(
        path, config, metadata if isinstance(metadata, dict) else {}, weights, workdir, assets
    )


def _json(archive: zipfile.ZipFile, name: str, path: Path) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_JSON:
        raise archive_error(path, f"{name} is larger than {MAX_JSON >> 20} MiB")
    with archive.open(info) as f:
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise archive_error(path, f"{name} is larger than {MAX_JSON >> 20} MiB")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise archive_error(path, f"{name} is not valid JSON ({exc})") from None


def _copy(archive: zipfile.ZipFile, name: str, target: Path, path: Path) -> None:
    copied = 0
    with archive.open(name) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            copied += len(chunk)
            if copied > MAX_WEIGHTS:
                raise archive_error(path, f"{name} is larger than {MAX_WEIGHTS >> 30} GiB")
            dst.write(chunk)
