"""From a file (or dict) to a checked spec: parse -> extends -> --set -> blocks ->
schema -> graph -> shapes. Every stage reports *all* its problems, positioned.

`load` is what `modelspec check` runs; it never imports JAX.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path as FsPath
from types import SimpleNamespace
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelspec.compiler import blocks as block_expansion
from modelspec.compiler import stacks
from modelspec.compiler.checked import CheckedSpec, SourceMap
from modelspec.compiler.compose import apply_overrides
from modelspec.compiler.extends import read_document
from modelspec.compiler.graph import resolve
from modelspec.compiler.infer import infer
from modelspec.compiler.memory import spec_limit_error
from modelspec.compiler.output_keys import output_key_errors
from modelspec.compiler.validation_errors import diagnostics
from modelspec.compiler.yaml_positions import Document
from modelspec.errors import Diagnostic, Path, SpecError, format_path
from modelspec.schema.base import SpecModel
from modelspec.schema.layers import LAYER_TYPES, Layer
from modelspec.schema.spec import BlockSpec, InputSpec, Spec


def load(
    source: str | FsPath | dict[str, Any] | Spec | CheckedSpec,
    overrides: list[str] | tuple = (),
) -> CheckedSpec:
    """Validate a spec (a path, a mapping, a Spec or a CheckedSpec) and check its graph,
    shapes and size. Raises SpecError with every problem found, positioned."""
    if isinstance(source, CheckedSpec) and not overrides:
        return source
    if isinstance(source, Spec) and not overrides:
        return _check(source, SourceMap("<spec>", Document(source.dump())))
    if isinstance(source, Spec | CheckedSpec):
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
        raise SpecError(_sorted(errors, smap)) from None
    if errors:
        raise SpecError(_sorted(errors))
    return _check(spec, smap)


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


def _check(spec: Spec, smap: SourceMap) -> CheckedSpec:
    """Graph, shapes and the memory bound of a validated spec."""
    graph, errors = resolve(spec, smap.locate)
    shapes, shape_errors = infer(graph, spec, smap.locate)
    errors += shape_errors
    if not errors:
        errors += output_key_errors(spec, graph.outputs, smap.locate)
    if errors:
        raise SpecError(_sorted([_as_written(d, smap) for d in errors], smap))
    checked = CheckedSpec(spec, graph, shapes, smap)
    execution, stack_errors = stacks.resolve(checked)
    if stack_errors:
        raise SpecError(_sorted([_as_written(d, smap) for d in stack_errors], smap))
    checked = dataclasses.replace(checked, execution=execution)
    too_big = spec_limit_error(checked)
    if too_big is not None:
        raise SpecError([too_big])
    return checked


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
                errors.append(
                    Diagnostic.at(
                        smap.locate(("blocks", name), True),
                        ("blocks", name),
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
    return Diagnostic.at(pos, path, message, kw.get("received"), kw.get("hint"))


_EXPANDED = re.compile(r"^model\.(layers|stacks)\[(\d+)\]")
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _as_written(diag: Diagnostic, smap: SourceMap) -> Diagnostic:
    """Name a diagnostic inside an expanded block by the path where it was written
    (`blocks.res.layers[0].units`), not by one of its expanded copies."""
    m = _EXPANDED.match(diag.path)
    if m is None:
        return diag
    rest = diag.path[m.end() :]
    parts: list = [n if n else int(i) for n, i in _PART.findall(rest)]
    full = ("model", m.group(1), int(m.group(2)), *parts)
    origin = block_expansion.origin_of(smap.origin, full)
    if not origin or origin == full:
        return diag
    if m.group(1) == "stacks":  # a stack's option: the block use that wrote it
        return dataclasses.replace(diag, path=format_path(origin))
    if origin[0] != "blocks" and origin[3:] != full[3:]:  # a block parameter's use site
        return diag
    # inside a block, or a layer after a block use: its index as written, not expanded
    return dataclasses.replace(diag, path=format_path(origin))


def _sorted(diags: list[Diagnostic], smap: SourceMap | None = None) -> list[Diagnostic]:
    """Diagnostics in file order, each once: an error inside a block repeated 1,000 times
    is one error of the block, not 1,000."""
    unique: dict[tuple, Diagnostic] = {}
    copies: dict[tuple, int] = {}
    for d in diags:  # one place in a block, one error: written once, expanded often
        key = _written_once(d)
        copies[key] = copies.get(key, 0) + 1
        unique.setdefault(key, d)
    out = []
    for key, d in unique.items():
        uses = _copies(smap, d.path) if copies[key] > 1 and smap is not None else 0
        if uses > 1:  # found in several copies: say so once, at the block's own line
            block = d.path.split(".")[1]
            d = dataclasses.replace(
                d,
                message=f"{d.message.rstrip('.')} (reported once for the {uses} copies "
                f"of block '{block}')",
            )
        out.append(d)
    return sorted(out, key=lambda d: (d.file, d.line, d.col))


def _copies(smap: SourceMap, path: str) -> int:
    """How many expanded layers come from the block layer that `path` is written in."""
    m = re.match(r"^blocks\.([^.\[]+)\.layers\[(\d+)\]", path)
    if m is None:
        return 0
    src = ("blocks", m.group(1), "layers", int(m.group(2)))
    return sum(1 for k, v in (smap.origin or {}).items() if len(k) == 3 and v == src)


def _written_once(d: Diagnostic) -> tuple:
    """What makes two diagnostics one error: inside a block, its place (each expanded
    copy names its own layers and inputs); elsewhere, the same text at the same place."""
    if not d.line:
        return (d,)
    if d.path.startswith("blocks."):
        return (d.file, d.line, d.col, d.path)
    return (d.file, d.line, d.col, d.message, d.received)
