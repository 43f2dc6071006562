"""What the source readers produce and how they report: raw arrays and positioned errors.

Shared by every reader (`sources`, `csv_source`) and by the checks that follow
(`checks`), so a reader per format can live in its own module without importing the
others. Every reader has the signature of `Reader` and gets its facts in a `ReadContext`:
each source spec class names its own (`reader`), and `sources.read_source` calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelspec.errors import Diagnostic, Locate, choices_hint, short_repr
from modelspec.schema.tensors import TensorType

SpecPath = tuple[str | int, ...]


@dataclass
class Reporter:
    """Collects positioned diagnostics; `locate` maps a spec path to (file, line, col)."""

    locate: Locate
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(
        self, path: SpecPath, message: str, *, received: Any = None, hint: str | None = None
    ) -> None:
        shown = received if received is None or isinstance(received, str) else short_repr(received)
        self.diagnostics.append(Diagnostic.at(self.locate(path), path, message, shown, hint))


@dataclass
class RawArray:
    """One array as read from a source, with how the user knows it and where it is set."""

    array: np.ndarray
    what: str
    """The array in the user's terms: "array 'images'", "file 'x.npy'", "column 'y'"."""
    path: SpecPath
    """Spec path that diagnostics about this array point at."""
    columns: list[str] | None = None
    """Display names of the entries of a 2-D array's second axis (CSV feature columns),
    so a message can name the column a bad value is in."""
    lines: list[int] | None = None
    """File line of each row (CSV), so a message can name the line a bad value is on."""


@dataclass
class RawSource:
    """Everything read from one source: arrays per model input and per model output."""

    label: str
    """E.g. "data.train (npz 'x.npz')", the prefix of every message about it."""
    where: SpecPath
    inputs: dict[str, RawArray] = field(default_factory=dict)
    targets: dict[str, RawArray] = field(default_factory=dict)


def resolve(base_dir: Path, name: str) -> Path:
    """`name` as given in the spec: relative paths are relative to the spec's directory."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


@dataclass(frozen=True)
class ReadContext:
    """What every reader is told besides its source spec and the `RawSource` it fills:
    the model's inputs and outputs, the outputs that need targets, where relative paths
    start, and where problems go. One object, so each reader has one short signature and
    the reports every format makes (missing file, unknown name, wrong model arity) have
    one wording."""

    model_inputs: dict[str, TensorType]
    model_outputs: dict[str, TensorType]
    needed_outputs: list[str]
    base_dir: Path
    rep: Reporter
    learned: dict[Any, Any] = field(default_factory=dict)
    """State the sources of one `load_data` share, in reading order (train first): e.g.
    the classes a string label column of the training data defines, which the
    validation data must be mapped with."""

    def file(self, raw: RawSource, name: str, at: SpecPath) -> Path | None:
        """`name` resolved against the spec's directory; None (reported at `at`) when it
        is not a readable regular file."""
        file = resolve(self.base_dir, name)
        if file.is_file():
            return file
        what = "is a directory, not a file" if file.is_dir() else "was not found"
        self.rep.error(
            at,
            f"{raw.label}: file {str(file)!r} {what}",
            hint="Relative paths are resolved against the spec file's directory.",
        )
        return None

    def not_a_model_name(
        self, raw: RawSource, at: SpecPath, key: str, kind: str, model: dict[str, TensorType]
    ) -> None:
        """Report a mapping key that names no model input/output (`kind`)."""
        self.rep.error(
            at,
            f"{raw.label}: {key!r} is not a model {kind}",
            received=short_repr(key),
            hint=choices_hint(key, list(model)),
        )

    def single_input_output(self, source: Any, raw: RawSource) -> tuple[str, str] | None:
        """(input, output) names for a source that feeds one input and one output
        (sklearn, csv); None, reported, when the model has more."""
        if len(self.model_inputs) != 1 or len(self.model_outputs) != 1:
            self.rep.error(
                raw.where,
                f"{raw.label}: a {source.type} source feeds a model with one input and one "
                f"output, but the model has inputs {list(self.model_inputs)} and outputs "
                f"{list(self.model_outputs)}",
                hint="Use an npz or npy source, which maps arrays to inputs and outputs by name.",
            )
            return None
        (inp,), (out,) = self.model_inputs, self.model_outputs
        return inp, out


class Reader(Protocol):
    """How every source reader is called: read `source` into `raw` (arrays for the model
    inputs and for `ctx.needed_outputs`), reporting to `ctx.rep` what cannot be found or
    read."""

    def __call__(self, source: Any, raw: RawSource, ctx: ReadContext) -> None: ...
