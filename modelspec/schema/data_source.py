"""The base of every data source (`data.train`, `data.validation`): the registry the
`type:` union is built from, and validators the source kinds share. Pure pydantic."""

from __future__ import annotations

from typing import ClassVar

from modelspec.schema.vocabulary import Registered


class SourceSpec(Registered):
    """Base of every data source; each kind registers itself under its `type` and names
    the function that reads it."""

    registry: ClassVar[dict[str, type[SourceSpec]]] = {}
    reader: ClassVar[str]
    """`module:function` reading the source into named raw arrays, called as
    `reader(source, raw, ctx)` with a `ReadContext` (`modelspec.runtime.data.raw`)."""
    class_names_of: ClassVar[str | None] = None
    """`module:function` giving, for a source whose labels index named classes (class
    folders, string label columns), the class names per model output, which `train`
    writes to the run's `class_names.json` for `predict`; None for other sources."""

    type: str
    """Source kind."""


def distinct_names(value: list[str] | None, what: str = "class names") -> list[str] | None:
    repeated = sorted({n for n in value or [] if value.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} must be distinct; repeated: {repeated}")
    return value
