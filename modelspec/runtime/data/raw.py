"""What the source readers produce and how they report: raw arrays and positioned errors.

Shared by every reader (`sources`, `csv_source`) and by the checks that follow
(`checks`), so a reader per format can live in its own module without importing the
others. Every reader has the signature of `Reader`: each source spec class names its own
(`reader`), and `sources.read_source` calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelspec.errors import Diagnostic, Locate, short_repr
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


def missing_file(rep: Reporter, path: SpecPath, label: str, file: Path) -> bool:
    """Report (and return True) when `file` is not a readable regular file."""
    if file.is_file():
        return False
    what = "is a directory, not a file" if file.is_dir() else "was not found"
    rep.error(
        path,
        f"{label}: file {str(file)!r} {what}",
        hint="Relative paths are resolved against the spec file's directory.",
    )
    return True


class Reader(Protocol):
    """How every source reader is called: read `source` into `raw` (arrays for the model
    inputs and for `needed_outputs`), reporting to `rep` what cannot be found or read."""

    def __call__(
        self,
        source: Any,
        raw: RawSource,
        *,
        model_inputs: dict[str, TensorType],
        model_outputs: dict[str, TensorType],
        needed_outputs: list[str],
        base_dir: Path,
        rep: Reporter,
    ) -> None: ...


def single_input_output(
    source: Any,
    raw: RawSource,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    rep: Reporter,
) -> tuple[str, str] | None:
    """(input, output) names for a source that feeds one input and one output (sklearn,
    csv); None, reported, when the model has more."""
    if len(model_inputs) != 1 or len(model_outputs) != 1:
        rep.error(
            raw.where,
            f"{raw.label}: a {source.type} source feeds a model with one input and one "
            f"output, but the model has inputs {list(model_inputs)} and outputs "
            f"{list(model_outputs)}",
            hint="Use an npz or npy source, which maps arrays to inputs and outputs by name.",
        )
        return None
    (inp,), (out,) = model_inputs, model_outputs
    return inp, out
