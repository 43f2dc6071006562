"""Reading and checking the arrays `modelspec predict --input FILE` runs the model on.

The file comes from outside the spec, so it gets the care spec data gets before step
1: it is opened with `npfiles` (no unpickling, bounded memory, a clear error for a file
that is not an archive), each array is checked for what cannot be cast silently
(complex numbers, text, dates), for rows to predict, and then with the same
`check_arrays` as training data (shapes, integer ranges, NaN/inf). Every problem is one
`Diagnostic` naming the file and `--input.<array>`, raised together as a `DataError`.
Arrays in the file that are not model inputs (e.g. the targets of an evaluation file)
are ignored, so one file can serve `evaluate --data` and `predict --input`.

`--input` may instead name image files and folders (`read_image_inputs`): they are read
exactly as the spec's `image_folder` training source reads its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from modelspec.errors import DataError, Diagnostic, did_you_mean
from modelspec.runtime.data.checks import check_arrays
from modelspec.runtime.data.image_folder import (
    IMAGE_EXTENSIONS,
    MAX_IMAGE_BYTES,
    Confinement,
    ImageError,
    image_bytes,
    image_files,
    load_images,
)
from modelspec.runtime.data.npfiles import ArrayFileError, NpzArchive, file_kind
from modelspec.runtime.data.raw import RawArray, RawSource, Reporter
from modelspec.schema.data import DataSpec, ImageFolderSource
from modelspec.schema.tensors import TensorType

_LABEL = "input file"
_KINDS = {
    "c": ("holds complex numbers ({dtype}), which cannot be cast to {want} without "
          "losing the imaginary part", "Pass the real part (`x.real`), or the real and "
          "imaginary parts as separate features."),
    "U": ("holds text ({dtype}), not numbers", "Encode the text as numbers first."),
    "S": ("holds bytes ({dtype}), not numbers", "Encode the data as numbers first."),
    "M": ("holds dates ({dtype}), not numbers", "Convert them to numbers first."),
    "m": ("holds time spans ({dtype}), not numbers", "Convert them to numbers first."),
    "V": ("holds records ({dtype}), not plain numbers", "Pass one numeric array per input."),
}  # fmt: skip


def read_inputs(
    path: Path, types: dict[str, TensorType], *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """The model inputs from the `.npz` at `path`, cast to the inputs' dtypes; any
    problem raises one `DataError` listing them all."""
    where = str(path)
    rep = Reporter(lambda _path: (where, 0, 0))

    def fail(message: str, hint: str | None = None) -> NoReturn:
        raise DataError([Diagnostic(where, 0, 0, "--input", message, hint=hint)])

    if not path.is_file():
        fail(f"{_LABEL} {'is a directory' if path.is_dir() else 'was not found'}")
    try:
        if file_kind(path) == "npy":
            first = next(iter(types))
            fail(
                f"{_LABEL} holds a single array (.npy), not an .npz archive",
                hint=f"Save it as np.savez(FILE, {first}=array): arrays are matched to the "
                "model inputs by name.",
            )
        archive = NpzArchive(path)
    except ArrayFileError as exc:
        fail(f"{_LABEL}: {exc.message}", exc.hint)
    raw = RawSource(_LABEL, ("--input",))
    with archive:
        names = archive.names
        for name, want in types.items():
            at = ("--input", name)
            if name not in names:
                rep.error(
                    at,
                    f"{_LABEL}: no array named '{name}' (a model input)",
                    received=", ".join(names) or "no arrays",
                    hint=did_you_mean(name, names),
                )
                continue
            try:
                array = archive.load(name)
            except ArrayFileError as exc:
                rep.error(at, f"{_LABEL}: {exc.message}", hint=exc.hint)
                continue
            if _castable(name, array, want, rep):
                raw.inputs[name] = RawArray(array, f"array {name!r}", at)
        checked = check_arrays(raw, types, {}, {}, rep, allow_nonfinite=allow_nonfinite)
    if rep.diagnostics or checked is None:
        raise DataError(rep.diagnostics)
    return checked[0]


def _castable(name: str, array: np.ndarray, want: TensorType, rep: Reporter) -> bool:
    """Report (and return False) what no cast to the model dtype can fix, and 0 rows."""
    at = ("--input", name)
    kind = _KINDS.get(array.dtype.kind)
    if want.dtype == "string" and array.dtype.kind == "U":
        kind = None  # text for a text input: `check_arrays` takes it from here
    if kind is not None:
        message, hint = kind
        text = message.format(dtype=array.dtype, want=want.dtype)
        rep.error(at, f"{_LABEL}: array {name!r} {text}", received=str(array.dtype), hint=hint)
        return False
    if array.ndim >= 1 and array.shape[0] == 0:
        rep.error(
            at,
            f"{_LABEL}: array {name!r} has 0 rows: there is nothing to predict",
            received=f"shape {array.shape}",
            hint="Pass at least one example (one row per example).",
        )
        return False
    return True


def is_image_input(paths: Sequence[Path]) -> bool:
    """Whether `--input` names images (a folder, or image files) rather than one .npz."""
    return len(paths) != 1 or paths[0].is_dir() or is_image_file(paths[0])


def is_image_file(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_EXTENSIONS)


def image_input_files(paths: Sequence[Path]) -> tuple[list[str], list[str]]:
    """(image files in order, problems): a folder's images in Keras's order (every
    image file below it, as `image_dataset_from_directory(labels=None)` lists them),
    then each named file, in the order given."""
    files: list[str] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found: list[ImageError] = []
            files += image_files(str(path), False, Confinement(None), found)
            problems += [exc.message for exc in found]
        elif not path.exists():
            problems.append(f"{str(path)!r} was not found")
        elif not is_image_file(path):
            problems.append(
                f"{str(path)!r} is not an image file ({' '.join(IMAGE_EXTENSIONS)}); pass "
                "one .npz, or image files and folders"
            )
        else:
            files.append(str(path))
    return files, problems


def read_image_inputs(
    paths: Sequence[Path], types: dict[str, TensorType], data: DataSpec | None
) -> dict[str, np.ndarray]:
    """The model's one input from image files and folders, read exactly as the spec's
    `image_folder` training source reads its images (size, color mode, interpolation,
    crop or pad), so predictions see what training saw."""
    where = ", ".join(str(p) for p in paths)

    def fail(messages: list[str], hint: str | None = None) -> NoReturn:
        raise DataError([Diagnostic(where, 0, 0, "--input", m, hint=hint) for m in messages])

    source = data.train if data is not None else None
    if not isinstance(source, ImageFolderSource):
        fail(
            ["image inputs need a spec whose data.train is an image_folder source"],
            hint="Its image_size, color_mode and interpolation say how to read the images; "
            "for other models pass an .npz with arrays named after the inputs.",
        )
    if len(types) != 1:
        fail([f"image inputs feed a model with one input; this one has {list(types)}"])
    files, problems = image_input_files(paths)
    if problems:
        fail(problems)
    if not files:
        fail([f"no image files ({' '.join(IMAGE_EXTENSIONS)}) found"])
    if image_bytes(len(files), source) > MAX_IMAGE_BYTES:
        fail(
            [f"{len(files)} images take more than {MAX_IMAGE_BYTES >> 30} GiB decoded"],
            hint="Predict on fewer images at a time.",
        )
    images, bad = load_images(files, source)
    if bad:
        fail([exc.message for exc in bad])
    (name,) = types
    rep = Reporter(lambda _path: (where, 0, 0))
    raw = RawSource(_LABEL, ("--input",))
    raw.inputs[name] = RawArray(images, "the images", ("--input",))
    checked = check_arrays(raw, types, {}, {}, rep)
    if rep.diagnostics or checked is None:
        raise DataError(rep.diagnostics)
    return checked[0]
