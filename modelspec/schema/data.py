"""The `data:` section: where training examples come from and how they are batched.

Only *descriptions* live here (pure pydantic, no numpy): `check`, `summary` and `schema`
must validate a spec without touching the files it names. Loading, the shape/dtype/label
checks against the model, and batching are in `modelspec.runtime.data`; each source class
names its reader there (`reader`), so adding a kind of source touches no dispatch code.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from modelspec.schema.base import PositiveInt, SpecModel, UnitInterval
from modelspec.schema.vocabulary import Registered, tagged_union

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
"""Toy datasets bundled inside scikit-learn (`sklearn.datasets.load_*`): no download."""


class SourceSpec(Registered):
    """Base of every data source; each kind registers itself under its `type` and names
    the function that reads it."""

    registry: ClassVar[dict[str, type[SourceSpec]]] = {}
    reader: ClassVar[str]
    """`module:function` reading the source into named raw arrays, called as
    `reader(source, raw, ctx)` with a `ReadContext` (`modelspec.runtime.data.raw`)."""

    type: str
    """Source kind."""


class SklearnSource(SourceSpec):
    """A toy dataset bundled with scikit-learn. Its features feed the model's single
    input and its target the model's single output."""

    reader = "modelspec.runtime.data.sources:read_sklearn"

    type: Literal["sklearn"]
    """Source kind: a dataset shipped inside scikit-learn."""
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]
    """Which dataset (`sklearn.datasets.load_<name>`)."""


class NpzSource(SourceSpec):
    """Arrays in one NumPy `.npz` archive; only the arrays the model needs are read.
    Arrays of an uncompressed archive (`np.savez`) are memory-mapped; those of a
    compressed one (`np.savez_compressed`) cannot be, and are decompressed into memory
    only up to 1 GiB each."""

    reader = "modelspec.runtime.data.sources:read_npz"

    type: Literal["npz"]
    """Source kind: a NumPy `.npz` archive."""
    path: str = Field(min_length=1)
    """The `.npz` file; a relative path is relative to the spec file's directory."""
    inputs: dict[str, str] | None = None
    """Model input name -> array name. Default: the array named like the input, or `x`
    for a single-input model."""
    targets: dict[str, str] | None = None
    """Model output name -> array name. Default: the array named like the output, or
    `y` for a single-output model."""


class NpySource(SourceSpec):
    """One memory-mapped NumPy `.npy` file per model input and output (for data larger
    than memory: batches read only their rows)."""

    reader = "modelspec.runtime.data.sources:read_npy"

    type: Literal["npy"]
    """Source kind: separate `.npy` files."""
    inputs: dict[str, str] = Field(min_length=1)
    """Model input name -> `.npy` file (relative to the spec file's directory)."""
    targets: dict[str, str] = Field(min_length=1)
    """Model output name -> `.npy` file (relative to the spec file's directory)."""


class CsvSource(SourceSpec):
    """A numeric CSV table: one row per example, the feature columns form the model's
    single input (shape `[n_features]`), the label column its single output."""

    reader = "modelspec.runtime.data.csv_source:read_csv"

    type: Literal["csv"]
    """Source kind: a CSV file."""
    path: str = Field(min_length=1)
    """The CSV file; a relative path is relative to the spec file's directory."""
    label: str | int
    """The target column: its header name, or its 0-based index."""
    features: list[str | int] | None = Field(None, min_length=1)
    """Feature columns (names or 0-based indices), in input order. Default: every
    column except `label`."""
    header: bool = True
    """Whether the first row holds column names."""
    delimiter: str = Field(",", min_length=1, max_length=1)
    """Field separator (one character)."""

    @model_validator(mode="after")
    def _names_need_header(self) -> CsvSource:
        named = [c for c in [self.label, *(self.features or [])] if isinstance(c, str)]
        if named and not self.header:
            raise ValueError(
                f"column name {named[0]!r} used but `header` is false; refer to columns "
                "by 0-based index, or set `header: true`"
            )
        return self


IMAGE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
"""The `interpolation`s Keras's JAX backend resizes with (`ops.image.resize`)."""
_TF_ONLY_INTERPOLATIONS = ("area", "gaussian", "mitchellcubic")


class ImageFolderSource(SourceSpec):
    """Image files in one folder per class, read like Keras's
    `keras.utils.image_dataset_from_directory(directory, labels="inferred")`: the class
    subfolders (sorted, or `class_names`) give the labels, every `.bmp .gif .jpeg .jpg
    .png` file below a class folder is one example (other files are skipped), in
    Keras's order, decoded with Pillow, converted to `color_mode`, resized to
    `image_size` as Keras's `ops.image.resize` does, as float32 in [0, 255].

    Feeds a model with one input (shape `[height, width, channels]`) and one output.
    The images are decoded into memory once per run: `N * height * width * channels * 4`
    bytes, refused above 4 GiB. Keras's `shuffle`, `seed`, `validation_split` and
    `subset` are not arguments here: the `data` section's `shuffle`, `seed` and
    `validation_split` (with `split: last` for Keras's cut of the last files) do that.
    The folder must lie inside the spec's folder or repository (`--allow-outside`
    lifts this), judged by where symlinks point."""

    reader = "modelspec.runtime.data.image_folder:read_image_folder"

    type: Literal["image_folder"]
    """Source kind: a folder of images, one subfolder per class."""
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
    follow_links: bool = False
    """Descend into subfolders that are symlinks (class folders are always followed)."""

    @field_validator("interpolation")
    @classmethod
    def _jax_interpolation(cls, value: str) -> str:
        if value in _TF_ONLY_INTERPOLATIONS:
            raise ValueError(
                f"interpolation {value!r} is only available with Keras's TensorFlow "
                f"backend; use one of {', '.join(IMAGE_INTERPOLATIONS)}"
            )
        return value

    @field_validator("class_names")
    @classmethod
    def _distinct_classes(cls, value: list[str] | None) -> list[str] | None:
        repeated = sorted({n for n in value or [] if value.count(n) > 1})
        if repeated:
            raise ValueError(f"class names must be distinct; repeated: {repeated}")
        return value

    @field_validator("pad_to_aspect_ratio")
    @classmethod
    def _pad_or_crop(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("crop_to_aspect_ratio"):
            raise ValueError(
                "only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be true"
            )
        return value


Source = tagged_union(SourceSpec.registry)
"""A data source, chosen by its `type:`."""

SOURCE_TYPES = tuple(SourceSpec.registry)
"""The valid `type:` values of a data source."""


class DataSpec(SpecModel):
    """Training (and validation) data and how it is cut into batches.

    Batching is deterministic: the order of the samples in epoch `e` depends only on
    (`seed`, `e`), so an interrupted run resumes at the exact batch it stopped at.
    Every batch has exactly `batch_size` rows, so the step function compiles once: with
    `drop_remainder: false` the last, partial batch of an epoch is padded by repeating
    its first rows, and each batch carries a `mask` (1.0 for real samples, 0.0 for
    padding) by which losses and metrics are weighted, so padding never counts; with
    `drop_remainder: true` the partial batch is skipped instead.
    """

    train: Source
    """Where the training examples come from."""
    validation: Source | None = None
    """Separate validation data (exclusive with `validation_split`)."""
    validation_split: UnitInterval | None = None
    """Fraction of the training data held out for validation (how: see `split`)."""
    split: Literal["random", "last"] = "random"
    """How `validation_split` picks its samples: `random` (a fixed random subset drawn
    from `seed`; right for data stored in any order) or `last` (the last samples before
    shuffling: Keras `fit(validation_split=...)`)."""
    batch_size: PositiveInt = 32
    """Samples per batch (Keras default 32)."""
    shuffle: bool = True
    """Reshuffle the training samples every epoch (false: file order)."""
    drop_remainder: bool = False
    """Skip the last, partial batch of each epoch instead of padding and masking it."""
    allow_nonfinite: bool = False
    """Let NaN and ±inf through in float features and in the float targets of
    non-sparse losses. By default they are an error before step 1, reported with the
    first one's position, since one NaN turns the loss into NaN within a step; set true
    only for data that legitimately holds them (a model that masks or imputes them)."""

    @model_validator(mode="after")
    def _one_validation_source(self) -> DataSpec:
        if self.validation is not None and self.validation_split is not None:
            raise ValueError(
                "`validation` and `validation_split` are mutually exclusive: give "
                "separate validation data, or hold out a fraction of `train`, not both"
            )
        return self
