"""The checked spec: what `load` returns once every check has passed.

A `CheckedSpec` holds the validated spec, the resolved layer graph, every layer's
inferred shape and the source map (where each value was written). Everything after
loading — summary, sharding plan, model builder, runtime — takes this one value, so
nothing re-enters the loader and nothing hangs private state on the frozen pydantic
model. `error()` is the one way to report a problem at a spec path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from modelspec.compiler import blocks as block_expansion
from modelspec.compiler.graph import Graph, split_ref
from modelspec.compiler.yaml_positions import Document
from modelspec.errors import Diagnostic, Path, Pos, SpecError
from modelspec.schema.spec import Spec
from modelspec.schema.tensors import LayerShape, TensorType


@dataclass
class SourceMap:
    """Where each value of the (expanded) spec was written."""

    file: str
    doc: Document
    origin: dict[Path, Path] = field(default_factory=dict)
    base_dir: FsPath = field(default_factory=FsPath.cwd)

    def locate(self, path: Path, key: bool = False) -> Pos:
        """(file, line, col) of the value at `path` (of its key with `key=True`), or of
        the nearest enclosing value that was written."""
        p = block_expansion.origin_of(self.origin, tuple(path))
        if key and p in self.doc.keys:
            return self.doc.keys[p]
        for cut in range(len(p), -1, -1):
            if p[:cut] in self.doc.values:
                return self.doc.values[p[:cut]]
        return (self.file, 1, 1)


@dataclass(frozen=True, eq=False)
class CheckedSpec:
    """A validated spec with its graph, shapes and source map.

    The spec's sections read through (`checked.model`, `checked.data`, `checked.seed`),
    so code written against the pydantic `Spec` keeps working; `checked.spec` is the
    pydantic object itself."""

    spec: Spec
    graph: Graph
    shapes: dict[str, LayerShape]
    source: SourceMap
    execution: Any = None
    """How repeated blocks run (`compiler/stacks.py` Execution: scanned stacks and
    rematerialized segments), resolved by `load`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("spec", "graph", "shapes", "source", "execution"):
            raise AttributeError(name)
        return getattr(self.spec, name)

    @property
    def base_dir(self) -> FsPath:
        """The folder relative paths of the spec (data files) are resolved against."""
        return self.source.base_dir

    def locate(self, path: Path, key: bool = False) -> Pos:
        return self.source.locate(path, key)

    def output_type(self, ref: str) -> TensorType | None:
        """The type of the tensor a reference names: a layer (`dense`) or one output of
        a multi-output layer (`lstm.1`); None for anything else (a model input)."""
        if ref in self.shapes:
            return self.shapes[ref].output
        base, index = split_ref(ref)
        shape = self.shapes.get(base)
        if shape is None or index is None or index >= len(shape.outputs):
            return None
        return shape.outputs[index]

    def error(
        self,
        path: Path,
        message: str,
        received: str | None = None,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> Diagnostic:
        """A diagnostic positioned where `path` was written (its key with `key=True`)."""
        return Diagnostic.at(self.locate(path, key), path, message, received, hint)

    def missing(self, section: str, message: str, hint: str) -> SpecError:
        """The error for a top-level `section` a command needs and the spec lacks: it
        points at the top of the spec, where the section would be added."""
        return SpecError.single(Diagnostic.at(self.locate(()), (section,), message, hint=hint))

    def dump(self) -> dict[str, Any]:
        """The canonical plain-data form of the spec (blocks expanded, defaults left out)."""
        return self.spec.dump()
