"""From a file (or dict) to a checked spec: parse -> extends -> --set -> blocks ->
schema -> graph -> shapes. Every stage reports *all* its problems, positioned.

`load` is what `modelspec check` runs; it never imports JAX.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from types import SimpleNamespace
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelspec.compiler import blocks as block_expansion
from modelspec.compiler.compose import apply_overrides
from modelspec.compiler.diagnose import diagnostics
from modelspec.compiler.extends import read_document
from modelspec.compiler.graph import Graph, resolve
from modelspec.compiler.shapes import infer
from modelspec.compiler.types import LayerShape
from modelspec.compiler.yaml_positions import Document, Pos
from modelspec.errors import Diagnostic, Path, SpecError, format_path
from modelspec.schema.base import SpecModel
from modelspec.schema.layers import LAYER_TYPES, Layer
from modelspec.schema.spec import BlockSpec, InputSpec, Spec


@dataclass
class SourceMap:
    """Where each value of the (expanded) spec was written."""

    file: str
    doc: Document
    origin: dict[Path, Path] = field(default_factory=dict)
    base_dir: FsPath = field(default_factory=FsPath.cwd)

    def locate(self, path: Path, key: bool = False) -> Pos:
        p = block_expansion.origin_of(self.origin, tuple(path))
        if key and p in self.doc.keys:
            return self.doc.keys[p]
        for cut in range(len(p), -1, -1):
            if p[:cut] in self.doc.values:
                return self.doc.values[p[:cut]]
        return (self.file, 1, 1)


@dataclass
class Analysis:
    """The resolved graph and every layer's inferred shape."""

    graph: Graph
    shapes: dict[str, LayerShape]


def load(source: str | FsPath | dict[str, Any] | Spec, overrides: list[str] | tuple = ()) -> Spec:
    """Validate a spec (path, mapping or Spec) and check its graph and shapes.

    Raises SpecError with every problem found. The returned Spec carries its source
    map and analysis (private attributes) for positioned errors later on."""
    if isinstance(source, Spec) and not overrides:
        if source._analysis is None:
            _attach(source, source._source or SourceMap("<spec>", Document(source.dump())))
        return source
    if isinstance(source, Spec):
        source = source.dump()
    if isinstance(source, dict):
        doc = Document(copy.deepcopy(source))
        smap = SourceMap("<dict>", doc)
    else:
        path = FsPath(source)
        doc = read_document(path)
        smap = SourceMap(
            doc.values.get((), (str(path), 1, 1))[0], doc, base_dir=path.resolve().parent
        )
    if overrides:
        apply_overrides(doc, list(overrides))
    if not isinstance(doc.data, dict):
        raise SpecError.single(
            Diagnostic(smap.file, 1, 1, "<document>", "a spec must be a mapping")
        )
    block_names = (
        list(doc.data.get("blocks") or {}) if isinstance(doc.data.get("blocks"), dict) else []
    )
    raw_blocks = copy.deepcopy(doc.data.get("blocks"))
    _check_blocks(doc.data, smap)
    expansion = block_expansion.expand(doc.data)
    smap.origin = expansion.origin
    errors = [_expansion_diag(smap, p, m, kw) for p, m, kw in expansion.errors]
    if expansion.too_large:
        raise SpecError(_sorted(errors))
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        choices = block_expansion.known_types({n: None for n in block_names})
        found = diagnostics(exc, doc.data, Spec, smap.locate, choices)
        if errors:  # a use that failed to expand leaves `model.layers` short: not news
            found = [d for d in found if d.path != "model.layers" or "at least" not in d.message]
        errors += [_as_written(d, smap) for d in found + _partial_graph_errors(doc.data, smap)]
        raise SpecError(_sorted(errors)) from None
    if errors:
        raise SpecError(_sorted(errors))
    spec._blocks = raw_blocks
    _attach(spec, smap)
    return spec


_LAYER = TypeAdapter(Layer)
_INPUTS = TypeAdapter(dict[str, InputSpec])


def _partial_graph_errors(data: dict[str, Any], smap: SourceMap) -> list[Diagnostic]:
    """Graph and shape checks over the layers that did validate, so one run reports
    schema *and* graph errors. Invalid layers stay in the graph by name only; what
    depends on them is skipped rather than reported twice."""
    model = data.get("model")
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("layers"), list)
        or not model["layers"]
    ):
        return []
    try:
        inputs = _INPUTS.validate_python(model.get("inputs"))
    except ValidationError:
        return []
    if not inputs:
        return []
    layers = []
    for i, item in enumerate(model["layers"]):
        try:
            layers.append(_LAYER.validate_python(item))
        except ValidationError:
            raw = item if isinstance(item, dict) else {}
            name = raw.get("name") if isinstance(raw.get("name"), str) else f"#{i}"
            refs = raw.get("inputs") if isinstance(raw.get("inputs"), str | list | dict) else None
            layers.append(SimpleNamespace(name=name, inputs=refs, type=None, trainable=True))
    outputs = model.get("outputs")
    outputs = (
        outputs if isinstance(outputs, list) and all(isinstance(o, str) for o in outputs) else None
    )
    partial = SimpleNamespace(model=SimpleNamespace(inputs=inputs, layers=layers, outputs=outputs))
    graph, errors = resolve(partial, smap.locate)
    _, shape_errors = infer(graph, partial, smap.locate)
    return errors + shape_errors


def _attach(spec: Spec, smap: SourceMap) -> None:
    graph, errors = resolve(spec, smap.locate)
    shapes, shape_errors = infer(graph, spec, smap.locate)
    errors += shape_errors
    if errors:
        raise SpecError(_sorted([_as_written(d, smap) for d in errors]))
    spec._source = smap
    spec._analysis = Analysis(graph, shapes)
    from modelspec.compiler.memory import spec_limit_error  # imports load: not at the top

    too_big = spec_limit_error(spec)
    if too_big is not None:
        spec._analysis = None
        raise SpecError([too_big])


def analysis(spec: Spec) -> Analysis:
    """The graph and shapes of a loaded spec (computed on first use)."""
    if spec._analysis is None:
        load(spec)
    return spec._analysis


class _Blocks(SpecModel):
    blocks: dict[str, BlockSpec]


def _check_blocks(data: dict[str, Any], smap: SourceMap) -> None:
    """Blocks are validated before they are expanded (afterwards they are gone)."""
    if "blocks" not in data:
        return
    errors: list[Diagnostic] = []
    try:
        _Blocks.model_validate({"blocks": data["blocks"]})
    except ValidationError as exc:
        errors = diagnostics(exc, {"blocks": data["blocks"]}, _Blocks, smap.locate)
    if isinstance(data["blocks"], dict):
        for name in data["blocks"]:
            if name in LAYER_TYPES:
                pos = smap.locate(("blocks", name), True)
                errors.append(
                    Diagnostic(
                        pos[0],
                        pos[1],
                        pos[2],
                        f"blocks.{name}",
                        f"block name '{name}' is a Keras layer type",
                        received=repr(name),
                        hint="Give the block another name.",
                    )
                )
    if errors:
        raise SpecError(_sorted(errors))


def _expansion_diag(smap: SourceMap, path: Path, message: str, kw: dict) -> Diagnostic:
    """Expansion errors carry paths as written (before expansion): locate directly."""
    pos = SourceMap(smap.file, smap.doc).locate(path, key=message.startswith("unknown argument"))
    return Diagnostic(
        pos[0], pos[1], pos[2], format_path(path), message, kw.get("received"), kw.get("hint")
    )


_EXPANDED = re.compile(r"^model\.layers\[(\d+)\]")
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _as_written(diag: Diagnostic, smap: SourceMap) -> Diagnostic:
    """Name a diagnostic inside an expanded block by the path where it was written
    (`blocks.res.layers[0].units`), not by one of its expanded copies."""
    m = _EXPANDED.match(diag.path)
    if m is None:
        return diag
    rest = diag.path[m.end() :]
    parts: list = [n if n else int(i) for n, i in _PART.findall(rest)]
    full = ("model", "layers", int(m.group(1)), *parts)
    origin = block_expansion.origin_of(smap.origin, full)
    if not origin or origin[0] != "blocks":
        return diag
    return dataclasses.replace(diag, path=format_path(origin))


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file order, each once: an error inside a block repeated 1,000 times
    is one error of the block, not 1,000."""
    unique = dict.fromkeys(diags)
    return sorted(unique, key=lambda d: (d.file, d.line, d.col))
