"""The `data:` section: where training examples come from and how they are batched.

Only *descriptions* live here (pure pydantic, no numpy): `check`, `summary` and `schema`
must validate a spec without touching the files it names. Loading, the shape/dtype/label
checks against the model, and batching are in `modelspec.runtime.data`; each source class
names its reader there (`reader`), so adding a kind of source touches no dispatch code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from modelspec.schema.base import PositiveInt, SpecModel, UnitInterval
from modelspec.schema.data_source import SourceSpec, distinct_names
from modelspec.schema.vocabulary import tagged_union

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
"""Toy datasets bundled inside scikit-learn (`sklearn.datasets.load_*`): no download."""


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


class ColumnTarget(SpecModel):
    """A target column (CSV) or field (JSONL) holding class names, with the classes
    listed: label `i` is `classes[i]`."""

    column: str | int
    """The column: its header name or 0-based index (CSV), or the field name (JSONL)."""
    classes: list[str] | None = Field(None, min_length=1)
    """The class names in label order; a value not listed is an error naming its line.
    Default: the sorted distinct values of the training data's column (the validation
    data is mapped with the training data's classes)."""

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, value: list[str] | None) -> list[str] | None:
        return distinct_names(value)


ColumnRefs = str | int | Annotated[list[str | int], Field(min_length=1)]
"""One column (name or 0-based index) or several, stacked in the given order."""


class CsvSource(SourceSpec):
    """A CSV table, one row per example (read with Python's `csv` module: quoted fields
    may hold delimiters and newlines; UTF-8, a leading byte-order mark skipped).

    Columns are chosen in one of two ways. `label` (with optional `features`): a numeric
    table whose feature columns form the model's single input (shape `[n_features]`) and
    whose label column its single output. Or `inputs` and `targets`, mapping model
    inputs and outputs by name: an input of dtype `string` takes one column as text, a
    numeric input one or more numeric columns (stacked in order; one column feeds an
    input of shape `[]` or `[1]`); a target column holding text (no cell is a number)
    is a class column whose values become class indices 0..K-1 (see `ColumnTarget`), a
    numeric one is used as is. Class names go to the run's `class_names.json`."""

    reader = "modelspec.runtime.data.csv_source:read_csv"
    class_names_of = "modelspec.runtime.data.csv_source:csv_class_names"

    type: Literal["csv"]
    """Source kind: a CSV file."""
    path: str = Field(min_length=1)
    """The CSV file; a relative path is relative to the spec file's directory."""
    label: str | int | None = None
    """The target column: its header name, or its 0-based index (exclusive with
    `inputs`/`targets`)."""
    features: list[str | int] | None = Field(None, min_length=1)
    """Feature columns (names or 0-based indices), in input order. Default: every
    column except `label`."""
    header: bool = True
    """Whether the first row holds column names."""
    delimiter: str = Field(",", min_length=1, max_length=1)
    """Field separator (one character)."""
    inputs: dict[str, ColumnRefs] | None = Field(None, min_length=1)
    """Model input name -> its column(s), by header name or 0-based index (exclusive
    with `label`/`features`)."""
    targets: dict[str, str | int | ColumnTarget] | None = None
    """Model output name -> its target column, or `{column: c, classes: [...]}` to fix
    the class order of a class-name column."""

    @field_validator("inputs", "targets")
    @classmethod
    def _one_way(cls, value: object, info: ValidationInfo) -> object:
        given = [f for f in ("label", "features") if info.data.get(f) is not None]
        if given:
            raise ValueError(
                f"`{info.field_name}` cannot be combined with `{given[0]}`: choose columns "
                "either with `label`/`features` (one numeric input and output) or with "
                "`inputs`/`targets` (model names -> columns)"
            )
        return value

    @model_validator(mode="after")
    def _names_need_header(self) -> CsvSource:
        if self.label is None and self.inputs is None and self.targets is None:
            raise ValueError(
                "a csv source needs `label` (and optionally `features`), or `inputs` and "
                "`targets` mapping model inputs and outputs to columns"
            )
        mapped = [
            *(c for v in (self.inputs or {}).values() for c in (v if isinstance(v, list) else [v])),
            *(
                t.column if isinstance(t, ColumnTarget) else t
                for t in (self.targets or {}).values()
            ),
        ]
        named = [c for c in [self.label, *(self.features or []), *mapped] if isinstance(c, str)]
        if named and not self.header:
            raise ValueError(
                f"column name {named[0]!r} used but `header` is false; refer to columns "
                "by 0-based index, or set `header: true`"
            )
        return self


# The class-folder sources register here, keeping the union's order (csv, folders, jsonl).
from modelspec.schema.data_folders import (  # noqa: E402, F401 - re-exported, registered
    IMAGE_INTERPOLATIONS,
    ImageFolderSource,
    TextFolderSource,
)


class JsonlSource(SourceSpec):
    """JSON Lines: one JSON object per line (UTF-8; blank lines skipped), one example
    per object. `inputs` and `targets` map model inputs and outputs to field names: an
    input of dtype `string` takes one string field as text; a numeric input one field
    holding a number or a (nested) list of numbers of the same shape on every line, or
    several number fields stacked in order. A target field holding strings is a class
    field whose values become class indices 0..K-1 (see `ColumnTarget`); one holding
    numbers (or lists of numbers) is used as is. Class names go to the run's
    `class_names.json`."""

    reader = "modelspec.runtime.data.jsonl_source:read_jsonl"
    class_names_of = "modelspec.runtime.data.jsonl_source:jsonl_class_names"

    type: Literal["jsonl"]
    """Source kind: a JSON Lines file."""
    path: str = Field(min_length=1)
    """The `.jsonl` file; a relative path is relative to the spec file's directory."""
    inputs: dict[str, str | Annotated[list[str], Field(min_length=1)]] = Field(min_length=1)
    """Model input name -> its field, or several number fields stacked in order."""
    targets: dict[str, str | ColumnTarget]
    """Model output name -> its target field, or `{column: field, classes: [...]}` to
    fix the class order of a class-name field."""

    @field_validator("targets")
    @classmethod
    def _named_fields(cls, value: dict[str, str | ColumnTarget]) -> dict:
        for target in value.values():
            if isinstance(target, ColumnTarget) and not isinstance(target.column, str):
                raise ValueError(
                    f"JSON fields are named: `column: {target.column}` must be a field name"
                )
        return value


# The token-file source of causal language models registers here, after jsonl.
from modelspec.schema.data_tokens import TokensSource  # noqa: E402, F401 - registered

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
    workers: PositiveInt | None = None
    """Background threads that build training and validation batches ahead of the step
    (decoding streamed images, gathering rows), like Keras's `PyDataset(workers=...)`.
    Default: the machine's CPU count, at most 32. Batches are the same for any value:
    only speed changes."""
    max_queue_size: PositiveInt | None = None
    """Training batches (of `steps_per_execution` steps each) built ahead of the one
    the step is using, like Keras's `PyDataset(max_queue_size=...)`; the host holds at
    most `max_queue_size + 2` of them (and as many validation batches while
    validating). Default: enough to keep every worker busy (at least 2, at most 16)."""
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
