"""The `image_folder` data source: Keras's `image_dataset_from_directory`, without
TensorFlow.

Indexing follows Keras's `dataset_utils.index_directory` (labels="inferred"): the class
folders are the subfolders of `directory` not starting with `.`, sorted (or
`class_names`, in that order); below each, every file whose lower-cased name ends in
`.bmp .gif .jpeg .jpg .png` is an example, walked as `os.walk` does (recursively;
symlinked subfolders only with `follow_links`) and ordered by folder path, then file
name. Decoding follows Keras's grain loader (`_load_image_grain`): Pillow, converted to
L/RGB/RGBA unless already that mode (16- and 32-bit grayscale are kept), float32, then
resized as `ops.image.resize` does (`image_resize`).

Unlike Keras, which reads files lazily and fails mid-epoch on a bad one, every image is
decoded here before step 1 (into memory, `N*H*W*C*4` bytes, capped at
`MAX_IMAGE_BYTES`), so an unreadable file, a folder outside the spec's tree, a symlink
loop or an empty dataset is a positioned error naming the file. An empty class folder
is kept as a class (as Keras does) with a warning.
"""

from __future__ import annotations

import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from modelspec.runtime.data.class_names import (  # noqa: F401 - re-exported
    CLASS_NAMES_FILE,
    prediction_lines,
    write_class_names,
)
from modelspec.runtime.data.folders import MAX_LISTED as _MAX_LISTED
from modelspec.runtime.data.folders import (  # noqa: F401 - the folder code moved there
    Confinement,
    FolderIndex,
    class_folders,
    confinement,
    encode_labels,
    folder_files,
    index_folder,
    read_index,
)
from modelspec.runtime.data.folders import FolderError as ImageError
from modelspec.runtime.data.image_resize import resize
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext
from modelspec.schema.data import ImageFolderSource

IMAGE_EXTENSIONS = ImageFolderSource.extensions
"""Keras's `ALLOWLIST_FORMATS`: other files in the class folders are skipped."""
PIL_FORMATS = ("JPEG", "PNG", "BMP", "GIF")
"""Pillow decoders allowed (its JPEG one also opens MPO camera files); a file with an
image extension holding another format is refused rather than handed to an exotic
decoder."""
MAX_IMAGE_BYTES = 4 << 30
"""Most memory the decoded images of one source may take (4 GiB)."""
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}

image_files = partial(folder_files, extensions=IMAGE_EXTENSIONS)
"""`image_files(top, follow_links, box, problems)`: the image files below `top`, in
Keras's order."""


def decode(path: str, channels: int) -> np.ndarray:
    """One image file as float32 (height, width, channels), converted as Keras's grain
    loader converts it; `ImageError` when it is not a readable image."""
    from PIL import Image  # imported only when images are read

    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ImageError(f"{path!r} is not a regular file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's palette notes
            with Image.open(path, formats=PIL_FORMATS) as img:
                if channels == 1 and img.mode not in ("L", "I;16", "I"):
                    img = img.convert("L")
                elif channels == 3 and img.mode != "RGB":
                    img = img.convert("RGB")
                elif channels == 4 and img.mode != "RGBA":
                    img = img.convert("RGBA")
                array = np.array(img)
    except ImageError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        reason = (str(exc) or type(exc).__name__).replace(f" {path!r}", "")  # named once
        raise ImageError(f"cannot read image {path!r}: {reason}") from None
    array = array.astype(np.float32)
    return array[:, :, np.newaxis] if array.ndim == 2 else array


def load_images(files: list[str], source: ImageFolderSource) -> tuple[np.ndarray, list[ImageError]]:
    """Decode and resize `files` into one (N, height, width, channels) float32 array
    (threads: Pillow decodes without the GIL); problems are returned, not raised."""
    channels = CHANNELS[source.color_mode]
    height, width = source.image_size
    out = np.empty((len(files), height, width, channels), dtype=np.float32)

    def one(i: int) -> ImageError | None:
        try:
            image = decode(files[i], channels)
        except ImageError as exc:
            return exc
        out[i] = resize(
            image,
            (height, width),
            source.interpolation,
            crop_to_aspect_ratio=source.crop_to_aspect_ratio,
            pad_to_aspect_ratio=source.pad_to_aspect_ratio,
        )
        return None

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        problems = [p for p in pool.map(one, range(len(files))) if p is not None]
    return out, problems


def image_bytes(n: int, source: ImageFolderSource) -> int:
    height, width = source.image_size
    return n * height * width * CHANNELS[source.color_mode] * 4


def read_image_folder(source: ImageFolderSource, raw: RawSource, ctx: ReadContext) -> None:
    """Index, check and decode an image folder into the model's one input and output."""
    names = ctx.single_input_output(source, raw)
    if names is None:
        return
    inp, out = names
    at = (*raw.where, "directory")

    def report(problems: list[ImageError]) -> None:
        for exc in problems[:_MAX_LISTED]:
            where = (*raw.where, exc.field)
            ctx.rep.error(where, f"{raw.label}: {exc.message}", hint=exc.hint)
        if len(problems) > _MAX_LISTED:
            ctx.rep.error(at, f"{raw.label}: {len(problems) - _MAX_LISTED} more such problems")

    hint = "Put .bmp .gif .jpeg .jpg or .png files in one subfolder per class."
    index = read_index(raw, ctx, source, "images", hint)
    if index is None:
        return
    need = image_bytes(len(index.files), source)
    stream = source.in_memory is False or (source.in_memory == "auto" and need > MAX_IMAGE_BYTES)
    if need > MAX_IMAGE_BYTES and not stream:
        ctx.rep.error(
            (*raw.where, "image_size"),
            f"{raw.label}: {len(index.files)} images of {list(source.image_size)} x "
            f"{CHANNELS[source.color_mode]} channels take {need / 2**30:.1f} GiB decoded, "
            f"over the {MAX_IMAGE_BYTES >> 30} GiB modelspec holds in memory",
            hint="Use `in_memory: auto` or `false` to stream them from the files, or a "
            "smaller image_size or color_mode.",
        )
        return
    if stream:  # read per batch (image_stream); only the headers are read now
        from modelspec.runtime.data.image_stream import stream_images

        images, problems = stream_images(index.files, source, raw, ctx, inp)
    else:
        images, problems = load_images(index.files, source)
    if problems or images is None:
        report(problems)
        return
    labels = encode_labels(index.labels, source.label_mode, len(index.class_names))
    raw.inputs[inp] = RawArray(images, f"the images of {source.directory!r}", at)
    raw.targets[out] = RawArray(labels, f"{source.label_mode} labels", (*raw.where, "label_mode"))
