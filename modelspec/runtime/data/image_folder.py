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

import json
import os
import stat
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.errors import choices_hint, short_repr
from modelspec.runtime.data.image_resize import resize
from modelspec.runtime.data.raw import RawArray, RawSource, ReadContext, resolve
from modelspec.schema.data import ImageFolderSource

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
"""Keras's `ALLOWLIST_FORMATS`: other files in the class folders are skipped."""
PIL_FORMATS = ("JPEG", "PNG", "BMP", "GIF")
"""Pillow decoders allowed (its JPEG one also opens MPO camera files); a file with an
image extension holding another format is refused rather than handed to an exotic
decoder."""
MAX_IMAGE_BYTES = 4 << 30
"""Most memory the decoded images of one source may take (4 GiB)."""
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
CLASS_NAMES_FILE = "class_names.json"
"""Written to the run directory by `train`: labels for `predict`."""
_MAX_LISTED = 10
"""Bad files reported by name; the rest are counted."""


class ImageError(Exception):
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
    """Class folders holding no image files."""
    problems: list[ImageError] = field(default_factory=list)


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
            raise ImageError(
                f"{what} {path!r} is outside {self.root}{target}, the spec's folder or the "
                "repository that holds it",
                hint="Move the data into the tree, or pass --allow-outside.",
            )


def confinement(base_dir: Path) -> Confinement:
    """The same tree `extends` is confined to, lifted by the same `--allow-outside`."""
    from modelspec.compiler.extends import extends_root, outside_allowed

    return Confinement(None if outside_allowed() else extends_root(Path(base_dir) / "spec"))


def _walk(top: str, follow_links: bool, box: Confinement, problems: list[ImageError]):
    """(folder, file names) of every folder `os.walk(top, followlinks=follow_links)`
    visits, sorted by folder path as Keras sorts them. Unlike os.walk, an unreadable
    folder, a folder or file outside the tree and a symlink loop are reported."""
    found: list[tuple[str, list[str]]] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(top, ())]
    while stack:
        folder, parents = stack.pop()
        real = os.path.realpath(folder)
        if real in parents:
            problems.append(ImageError(f"symlink loop at {folder!r} (it points to {real})"))
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(ImageError(f"cannot read folder {folder!r}: {exc.strerror or exc}"))
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
                except ImageError as exc:
                    problems.append(exc)
                    continue
                stack.append((path, (*parents, real)))
            elif not is_dir:
                names.append(entry.name)
        found.append((folder, names))
    found.sort(key=lambda item: item[0])
    return found


def image_files(top: str, follow_links: bool, box: Confinement, problems: list[ImageError]):
    """The image files below `top`, in Keras's order (`iter_valid_files`)."""
    files = []
    for folder, names in _walk(top, follow_links, box, problems):
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = os.path.join(folder, name)
                try:
                    box.check(path, "file")
                except ImageError as exc:
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
        raise ImageError(f"cannot read folder {directory!r}: {exc.strerror or exc}") from None
    if class_names is None:
        return subdirs
    missing = [name for name in class_names if name not in subdirs]
    if missing:
        raise ImageError(
            f"class {missing[0]!r} has no subfolder in {directory!r}",
            hint=choices_hint(missing[0], subdirs) if subdirs else "The folder has no subfolders.",
            field="class_names",
        )
    return list(class_names)


def index_folder(source: ImageFolderSource, base_dir: Path, box: Confinement) -> FolderIndex:
    """Index `source.directory` as Keras's `index_directory(labels="inferred")` does."""
    directory = str(resolve(base_dir, source.directory))
    index = FolderIndex()
    if not os.path.isdir(directory):
        what = "is not a folder" if os.path.exists(directory) else "was not found"
        raise ImageError(
            f"{directory!r} {what}",
            hint="Relative paths are resolved against the spec file's directory.",
        )
    box.check(directory, "folder")
    index.class_names = class_folders(directory, source.class_names)
    for label, name in enumerate(index.class_names):
        top = os.path.join(directory, name)
        try:
            box.check(top, "class folder")
        except ImageError as exc:
            index.problems.append(exc)
            continue
        files = image_files(top, source.follow_links, box, index.problems)
        if not files:
            index.empty.append(name)
        index.files += files
        index.labels += [label] * len(files)
    return index


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


def encode_labels(labels: list[int], label_mode: str, num_classes: int) -> np.ndarray:
    """Keras's label encodings: int32 indices, float32 one-hot, or float32 (N, 1)."""
    index = np.asarray(labels, dtype=np.int32)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[index]
    if label_mode == "binary":
        return index.astype(np.float32)[:, np.newaxis]
    return index


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

    try:
        index = index_folder(source, ctx.base_dir, confinement(ctx.base_dir))
    except ImageError as exc:
        report([exc])
        return
    if index.problems:
        report(index.problems)
        return
    if not index.files:
        ctx.rep.error(
            at,
            f"{raw.label}: no images found in {len(index.class_names)} class folder(s)",
            received=short_repr(index.class_names),
            hint="Put .bmp .gif .jpeg .jpg or .png files in one subfolder per class.",
        )
        return
    if source.label_mode == "binary" and len(index.class_names) != 2:
        ctx.rep.error(
            (*raw.where, "label_mode"),
            f"{raw.label}: label_mode 'binary' needs exactly 2 classes, found "
            f"{len(index.class_names)}",
            received=short_repr(index.class_names),
            hint="Use label_mode: int or categorical, or list two `class_names`.",
        )
        return
    need = image_bytes(len(index.files), source)
    if need > MAX_IMAGE_BYTES:
        ctx.rep.error(
            (*raw.where, "image_size"),
            f"{raw.label}: {len(index.files)} images of {list(source.image_size)} x "
            f"{CHANNELS[source.color_mode]} channels take {need / 2**30:.1f} GiB decoded, "
            f"over the {MAX_IMAGE_BYTES >> 30} GiB modelspec holds in memory",
            hint="Use a smaller image_size or color_mode, or fewer images.",
        )
        return
    for name in index.empty:
        print(
            f"Warning: {raw.label}: class folder {name!r} holds no images; it keeps its "
            "label (as in Keras) but no example has it.",
            file=sys.stderr,
        )
    images, problems = load_images(index.files, source)
    if problems:
        report(problems)
        return
    labels = encode_labels(index.labels, source.label_mode, len(index.class_names))
    raw.inputs[inp] = RawArray(images, f"the images of {source.directory!r}", at)
    raw.targets[out] = RawArray(labels, f"{source.label_mode} labels", (*raw.where, "label_mode"))


def write_class_names(run_dir: Path, spec: Any) -> None:
    """Write the class -> index map of an `image_folder` training source to
    `run_dir/class_names.json` (nothing for other sources), with what `predict` needs to
    turn outputs into class names: the output, the label mode and whether the loss
    takes logits."""
    data = getattr(spec, "data", None)
    source = getattr(data, "train", None)
    if not isinstance(source, ImageFolderSource):
        return
    directory = str(resolve(spec.base_dir, source.directory))
    output = next(iter(spec.graph.outputs))
    loss = spec.loss.get(output) if isinstance(spec.loss, dict) else spec.loss
    record = {
        "class_names": class_folders(directory, source.class_names),
        "label_mode": source.label_mode,
        "output": output,
        "from_logits": bool(getattr(loss, "from_logits", False)),
    }
    (Path(run_dir) / CLASS_NAMES_FILE).write_text(json.dumps(record, indent=2) + "\n")


def prediction_lines(run_dir: Path, outputs: dict[str, np.ndarray], names: list[str]) -> list[str]:
    """`name: class (probability)` per predicted example, when the run has a
    `class_names.json`; else nothing."""
    file = Path(run_dir) / CLASS_NAMES_FILE
    if not file.is_file():
        return []
    record = json.loads(file.read_text())
    classes, values = record["class_names"], np.asarray(outputs[record["output"]], np.float64)
    if record["label_mode"] == "binary":
        score = values.reshape(len(values), -1)[:, 0]
        prob = 1 / (1 + np.exp(-score)) if record["from_logits"] else score
        index = (prob > 0.5).astype(int)
        prob = np.where(index == 1, prob, 1 - prob)
    else:
        if record["from_logits"]:
            values = np.exp(values - values.max(axis=-1, keepdims=True))
            values /= values.sum(axis=-1, keepdims=True)
        index, prob = values.argmax(axis=-1), values.max(axis=-1)
    return [
        f"{n}: {classes[int(i)]} ({float(p):.4f})"
        for n, i, p in zip(names, index, prob, strict=True)
    ]
