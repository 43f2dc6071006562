"""Class-folder data sources: `image_folder` and `text_folder`, Keras's
`image_dataset_from_directory` and `text_dataset_from_directory` (labels inferred from
one subfolder per class). Descriptions only; the readers are in `modelspec.runtime.data`
(`image_folder.py`, `text_folder.py`, sharing `folders.py`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from modelspec.schema.base import PositiveInt
from modelspec.schema.data_source import SourceSpec, distinct_names

IMAGE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
"""The `interpolation`s Keras's JAX backend resizes with (`ops.image.resize`)."""
_TF_ONLY_INTERPOLATIONS = ("area", "gaussian", "mitchellcubic")


class ClassFolderSource(SourceSpec):
    """What both class-folder sources share: Keras's `labels="inferred"` arguments.
    Not a source kind itself (no `type`)."""

    class_names_of = "modelspec.runtime.data.folders:folder_class_names"

    directory: str = Field(min_length=1)
    """The folder holding one subfolder per class; relative to the spec file's folder."""
    labels: Literal["inferred"] = "inferred"
    """Labels come from the class subfolders (Keras's other choices, a list of labels
    or `None`, are not supported: training needs labels tied to folders)."""
    label_mode: Literal["int", "categorical", "binary"] = "int"
    """How labels are encoded: `int` class indices (sparse losses), `categorical`
    one-hot vectors, or `binary` 0/1 floats of shape `[1]` (exactly two classes)."""
    class_names: list[str] | None = Field(None, min_length=1)
    """The class subfolders to use, in label order (a subset of the subfolders).
    Default: every subfolder not starting with `.`, sorted alphanumerically."""
    follow_links: bool = False
    """Descend into subfolders that are symlinks (class folders are always followed)."""

    @field_validator("class_names")
    @classmethod
    def _distinct_classes(cls, value: list[str] | None) -> list[str] | None:
        return distinct_names(value)


class ImageFolderSource(ClassFolderSource):
    """Image files in one folder per class, read like Keras's
    `keras.utils.image_dataset_from_directory(directory, labels="inferred")`: the class
    subfolders (sorted, or `class_names`) give the labels, every `.bmp .gif .jpeg .jpg
    .png` file below a class folder is one example (other files are skipped), in
    Keras's order, decoded with Pillow, converted to `color_mode`, resized to
    `image_size` as Keras's `ops.image.resize` does, as float32 in [0, 255].

    Feeds a model with one input (shape `[height, width, channels]`) and one output.
    The images are decoded into memory once per run (`N * height * width * channels * 4`
    bytes) when that takes at most 4 GiB, and streamed from the files otherwise (see
    `in_memory`). Keras's `shuffle`, `seed`, `validation_split` and
    `subset` are not arguments here: the `data` section's `shuffle`, `seed` and
    `validation_split` (with `split: last` for Keras's cut of the last files) do that.
    The folder must lie inside the spec's folder or repository (`--allow-outside`
    lifts this), judged by where symlinks point."""

    reader = "modelspec.runtime.data.image_folder:read_image_folder"
    extensions: ClassVar[tuple[str, ...]] = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
    """Keras's `ALLOWLIST_FORMATS`: other files in the class folders are skipped."""

    type: Literal["image_folder"]
    """Source kind: a folder of images, one subfolder per class."""
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    """Channels the images are converted to: 1, 3 or 4."""
    image_size: tuple[PositiveInt, PositiveInt] = (256, 256)
    """`[height, width]` every image is resized to."""
    interpolation: Literal[
        "bilinear", "nearest", "bicubic", "lanczos3", "lanczos5", *_TF_ONLY_INTERPOLATIONS
    ] = "bilinear"
    """Resampling used when resizing (no antialiasing, as in Keras)."""
    crop_to_aspect_ratio: bool = False
    """Resize without distortion by cropping the largest centred window of the target
    aspect ratio first."""
    pad_to_aspect_ratio: bool = False
    """Resize without distortion by padding the image with zeros (evenly on both sides
    of the short axis) to the target aspect ratio first."""
    in_memory: bool | Literal["auto"] = "auto"
    """Whether every image is decoded into memory before step 1 (`true`) or read from
    its file each time a batch needs it (`false`: streaming, as Keras's lazily loaded
    datasets do, for folders larger than memory). `auto` (the default) decodes up front
    when the decoded images take at most 4 GiB, and streams otherwise. Streaming holds
    only the batches in flight in memory (see `data.max_queue_size`); every file's
    header (format, size, mode) is still checked before step 1, and a file that fails
    to decode later stops the run with an error naming it. Streamed images feed a float
    input, are decoded in `data.workers` background threads, and each process of a
    multi-process run reads only the files of its own rows of every batch."""

    @field_validator("interpolation")
    @classmethod
    def _jax_interpolation(cls, value: str) -> str:
        if value in _TF_ONLY_INTERPOLATIONS:
            raise ValueError(
                f"interpolation {value!r} is only available with Keras's TensorFlow "
                f"backend; use one of {', '.join(IMAGE_INTERPOLATIONS)}"
            )
        return value

    @field_validator("pad_to_aspect_ratio")
    @classmethod
    def _pad_or_crop(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("crop_to_aspect_ratio"):
            raise ValueError(
                "only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be true"
            )
        return value


class TextFolderSource(ClassFolderSource):
    """Text files in one folder per class, read like Keras's
    `keras.utils.text_dataset_from_directory(directory, labels="inferred")`: the class
    subfolders (sorted, or `class_names`) give the labels, every `.txt` file below a
    class folder is one example (other files are skipped), in Keras's order. Each file
    is read as UTF-8 (strictly: a file that is not UTF-8 is an error naming it and the
    byte offset), with universal newlines (`\r\n` and `\r` become `\n`, as Keras's
    TensorFlow-free loader reads it), cut to `max_length` characters.

    Feeds a model whose one input has `dtype: string` (shape `[]`, or `[1]`) and one
    output. All files are read into memory before step 1, refused above 1 GiB in all.
    Keras's `shuffle`, `seed`, `validation_split` and `subset` are the `data` section's
    `shuffle`, `seed`, `validation_split` and `split` here. The folder must lie inside
    the spec's folder or repository (`--allow-outside` lifts this)."""

    reader = "modelspec.runtime.data.text_folder:read_text_folder"
    extensions: ClassVar[tuple[str, ...]] = (".txt",)
    """Keras indexes only `.txt` files."""

    type: Literal["text_folder"]
    """Source kind: a folder of `.txt` files, one subfolder per class."""
    max_length: PositiveInt | None = None
    """Texts longer than this many characters are cut to their first `max_length`
    (default: kept whole)."""
