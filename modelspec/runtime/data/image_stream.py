"""Streaming image folders: images read from their files when a batch needs them.

An `image_folder` source too large to decode into memory (or with `in_memory: false`)
becomes an `ImageFiles` array: it has the shape and dtype the decoded images would have
and behaves like an array where the data code uses one (`len`, `shape`, `dtype`,
slicing and fancy indexing give smaller `ImageFiles`, `astype` records the cast), but
its pixels exist only when rows are read: `np.asarray(files[rows])` or `read_into`.
So `ArrayDataset` batches, validation splits and resume work unchanged, and a batch
holds exactly the arrays the in-memory path would give for the same (seed, epoch,
index): both decode with `image_folder.decode` and resize with `image_resize.resize`.

Before step 1 every file's header is read (Pillow's `Image.open` parses format, size
and mode without decoding pixels), so a file that is not an image is still an error
naming it before training. A file that fails to decode later (truncated data) stops the
run with a positioned `DataError` naming the file; nothing is ever skipped.
"""

from __future__ import annotations

import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelspec.errors import DataError, Diagnostic, Pos
from modelspec.runtime.data.image_folder import PIL_FORMATS, ImageError, decode
from modelspec.runtime.data.image_resize import resize
from modelspec.runtime.data.lazy_rows import LazyRows

__all__ = ["ImageFiles", "Recipe", "check_headers"]

_MODE_MAX = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 2.0**31, "F": np.inf}
"""Largest pixel value of Pillow modes beyond 8 bits (8-bit modes: 255)."""
_RESIZE_GAIN = 2.0
"""Bound on |resized| / max |pixel|: resize kernels' weights sum to 1 and their
negative lobes (bicubic, lanczos) add well under 1."""


@dataclass(frozen=True)
class Recipe:
    """How one file becomes one (height, width, channels) float32 image."""

    channels: int
    size: tuple[int, int]
    interpolation: str
    crop_to_aspect_ratio: bool
    pad_to_aspect_ratio: bool

    def image(self, path: str) -> np.ndarray:
        """Decode and resize one file exactly as the in-memory path does."""
        return resize(
            decode(path, self.channels),
            self.size,
            self.interpolation,
            crop_to_aspect_ratio=self.crop_to_aspect_ratio,
            pad_to_aspect_ratio=self.pad_to_aspect_ratio,
        )


@dataclass(frozen=True)
class Origin:
    """Where the source is written in the spec, for errors raised mid-run."""

    pos: Pos
    path: tuple[str | int, ...]
    label: str


def header(path: str) -> str:
    """Pillow's mode of the image file `path`, read from its header only (the pixels
    are not decoded); `ImageError` when it is not a readable image of an allowed
    format."""
    from PIL import Image  # imported only when images are read

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageError(f"{path!r} is not a regular file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(path, formats=PIL_FORMATS) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"image {path!r} has size {width}x{height}")
                return img.mode
    except (ImageError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        reason = (str(exc) or type(exc).__name__).replace(f" {path!r}", "")
        raise ImageError(f"cannot read image {path!r}: {reason}") from None


def check_headers(files: list[str], workers: int) -> tuple[float, list[ImageError]]:
    """Read every file's header (threads: file opens overlap). Returns the largest
    pixel value the files' modes allow (a bound on the decoded values) and the
    problems found."""

    def one(path: str) -> float | ImageError:
        try:
            return _MODE_MAX.get(header(path), 255.0)
        except ImageError as exc:
            return exc

    with ThreadPoolExecutor(max(1, workers)) as pool:
        found = list(pool.map(one, files))
    problems = [p for p in found if isinstance(p, ImageError)]
    values = [v for v in found if not isinstance(v, ImageError)]
    return max(values, default=255.0), problems


class ImageFiles(LazyRows):
    """A lazy (N, height, width, channels) array of image files (see module doc)."""

    ndim = 4

    def __init__(
        self,
        files: np.ndarray,
        recipe: Recipe,
        origin: Origin,
        *,
        pixel_max: float = 255.0,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(np.asarray(files, dtype=object), dtype)
        self.recipe = recipe
        self.origin = origin
        self.pixel_max = float(pixel_max)

    @property
    def files(self) -> np.ndarray:
        """The image file of each row."""
        return self.keys

    @property
    def row_shape(self) -> tuple[int, int, int]:
        return (*self.recipe.size, self.recipe.channels)

    def _like(self, keys: np.ndarray, dtype: np.dtype) -> ImageFiles:
        return ImageFiles(keys, self.recipe, self.origin, pixel_max=self.pixel_max, dtype=dtype)

    def finite_as(self, dtype: Any) -> bool:
        """Whether every decoded value is finite in `dtype` (known from the files'
        modes, so the check before step 1 decodes nothing)."""
        dtype = np.dtype(dtype)
        limit = float(np.finfo(dtype).max) if dtype.kind == "f" else 3e38
        return self.pixel_max * _RESIZE_GAIN < limit

    def read_into(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Decode the images of `rows` into `out` (len(rows), height, width, channels),
        cast to `out`'s dtype; a file that fails raises a `DataError` naming it."""
        for i, row in enumerate(rows):
            path = self.files[int(row)]
            try:
                out[i] = self.recipe.image(path)
            except ImageError as exc:
                o = self.origin
                raise DataError(
                    [
                        Diagnostic.at(
                            o.pos,
                            o.path,
                            f"{o.label}: {exc.message} (read while training: the file "
                            "changed or is damaged after the check before step 1)",
                            hint="Fix or remove the file and rerun: training resumes "
                            "from the last checkpoint.",
                        )
                    ]
                ) from None

    def __repr__(self) -> str:
        return f"ImageFiles(shape={self.shape}, dtype={self.dtype})"


def recipe_of(source: Any, channels: int) -> Recipe:
    """The decode recipe of an `ImageFolderSource`."""
    return Recipe(
        channels,
        tuple(source.image_size),
        source.interpolation,
        source.crop_to_aspect_ratio,
        source.pad_to_aspect_ratio,
    )


def stream_images(
    files: list[str], source: Any, raw: Any, ctx: Any, input_name: str
) -> tuple[ImageFiles | None, list[ImageError]]:
    """The `ImageFiles` of an image folder read per batch, after every file's header
    was checked (problems returned, to be reported with the folder's others). None
    (reported here) when the model input is not a float: the exact-integer and range
    checks of such inputs would need every image decoded before step 1."""
    from modelspec.runtime.data.image_folder import CHANNELS

    dtype = ctx.model_inputs[input_name].dtype
    if not (dtype.startswith("float") or dtype == "bfloat16"):
        ctx.rep.error(
            (*raw.where, "in_memory"),
            f"{raw.label}: streamed images feed a float model input, but model input "
            f"{input_name!r} has dtype {dtype}",
            received=dtype,
            hint=f"Declare model.inputs.{input_name}.dtype: float32, or set `in_memory: true`.",
        )
        return None, []
    workers = max(1, min(32, os.cpu_count() or 1))
    pixel_max, problems = check_headers(files, workers)
    at = (*raw.where, "directory")
    origin = Origin(ctx.rep.locate(at), at, raw.label)
    recipe = recipe_of(source, CHANNELS[source.color_mode])
    return ImageFiles(
        np.asarray(files, dtype=object), recipe, origin, pixel_max=pixel_max
    ), problems
