"""Graph resolution: names, references, call kinds, topological order, cycles.

Input is a validated spec whose blocks are already expanded and whose layers all have
names. Output is a `Graph`: nodes in an order where every input is computed before it
is used, each knowing exactly how it is called (one tensor, a list, or named args).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelspec.errors import Diagnostic, Locate, Path, did_you_mean
from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.spec import Spec


@dataclass(frozen=True)
class Node:
    """One layer in the resolved graph.

    `args` is the call: ("single", (ref,)), ("multi", (ref, ...)) or
    ("named", ((arg, ref), ...)); refs are model input or layer names.
    """

    name: str
    index: int
    layer: Any
    kind: str
    args: tuple

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(r for _, r in self.args) if self.kind == "named" else self.args


@dataclass(frozen=True)
class Graph:
    inputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]


_OUTPUT_REF = re.compile(r"^(.+)\.(\d+)$")


def _written_refs(inputs: object) -> list[tuple[tuple, str]]:
    """The names an unvalidated layer's `inputs` refers to, with their place in it."""
    if isinstance(inputs, str):
        return [((), inputs)]
    items = inputs.items() if isinstance(inputs, dict) else enumerate(inputs or ())
    return [((k,), v) for k, v in items if isinstance(v, str)]


def split_ref(ref: str) -> tuple[str, int | None]:
    """`lstm.1` -> ("lstm", 1): one tensor of a multi-output layer; a plain name ->
    (name, None). Unambiguous because layer names may not end in `.<digits>`."""
    m = _OUTPUT_REF.match(ref)
    return (m.group(1), int(m.group(2))) if m else (ref, None)


def output_refs(name: str, count: int) -> tuple[str, ...]:
    """The references of a layer's tensors: (name,) for one, name.0 ... for several."""
    return (name,) if count == 1 else tuple(f"{name}.{i}" for i in range(count))


def _labels(layer: Any) -> tuple[str, ...] | None:
    """A layer's output labels; None for a layer that failed validation (unknown)."""
    return getattr(layer, "output_labels", None)


def resolve(spec: Spec | Any, locate: Locate) -> tuple[Graph, list[Diagnostic]]:
    """Resolve references and order the layers.

    Returns the graph and every problem found; layers with problems stay out of the
    graph's reach (shape inference skips what depends on them), so the shapes of
    the rest can still be checked in the same run."""
    errors: list[Diagnostic] = []

    def err(path: Path, message: str, *, key: bool = False, **kw: Any) -> None:
        errors.append(Diagnostic.at(locate(path, key), path, message, **kw))

    model = spec.model
    input_names = list(model.inputs)
    names: dict[str, int] = {}
    for i, layer in enumerate(model.layers):
        path = ("model", "layers", i, "name")
        if layer.name in model.inputs:
            err(
                path,
                f"duplicate name '{layer.name}': it is also a model input",
                received=repr(layer.name),
                hint="Rename the layer or the input.",
            )
        elif layer.name in names:
            first = locate(("model", "layers", names[layer.name], "name"), False)
            err(
                path,
                f"duplicate name '{layer.name}'",
                received=repr(layer.name),
                hint=f"It is first used at line {first[1]}; layer names must be unique.",
            )
        else:
            names[layer.name] = i
            if isinstance(layer.name, str) and _OUTPUT_REF.match(layer.name):
                base, index = split_ref(layer.name)
                err(
                    path,
                    f"layer name '{layer.name}' ends in '.<digits>', which picks one output "
                    "of a multi-output layer (`lstm.1`)",
                    received=repr(layer.name),
                    hint=f"Rename it, e.g. '{base}_{index}'.",
                )
    duplicates = {i for i, layer in enumerate(model.layers) if names.get(layer.name) != i}
    known = [*input_names, *(n for n in names if not n.startswith("#"))]

    def check_ref(ref: str, path: Path) -> None:
        if ref in model.inputs:
            return
        base, index = split_ref(ref) if ref not in names else (ref, None)
        if base not in names:
            err(
                path,
                f"unknown reference '{ref}'",
                received=repr(ref),
                hint=did_you_mean(ref, known) or "Known names: " + ", ".join(known) + ".",
            )
            return
        labels = _labels(model.layers[names[base]])
        if labels is None:  # the layer failed validation: already reported
            return
        if index is None and len(labels) > 1:
            choices = ", ".join(f"{base}.{i} ({label})" for i, label in enumerate(labels))
            err(
                path,
                f"'{base}' returns {len(labels)} tensors: reference one of them",
                received=repr(ref),
                hint=f"Use one of {choices}.",
            )
        elif index is not None and len(labels) == 1:
            err(
                path,
                f"'{base}' has one output: reference it by its name",
                received=repr(ref),
                hint=f"Write `{base}` (only multi-output layers, e.g. an RNN with "
                "`return_state: true`, take `.<index>`).",
            )
        elif index is not None and index >= len(labels):
            err(
                path,
                f"{base} has {len(labels)} outputs (0..{len(labels) - 1})",
                received=repr(ref),
                hint="Outputs: "
                + ", ".join(f"{base}.{i} ({label})" for i, label in enumerate(labels))
                + ".",
            )

    nodes: list[Node] = []
    for i, layer in enumerate(model.layers):
        if i in duplicates or layer.type is None:  # None: failed validation, named only
            if i not in duplicates:  # its references are still checked: all errors at once
                for at, ref in _written_refs(layer.inputs):
                    check_ref(ref, ("model", "layers", i, "inputs", *at))
            continue
        path = ("model", "layers", i)
        call = LAYER_TYPES[layer.type].call  # the spec class says how it is called
        given = layer.inputs
        if given is None:
            if i == 0:
                if len(input_names) > 1:
                    err(
                        path,
                        "the first layer must name its `inputs`: the model has several "
                        f"inputs ({', '.join(input_names)})",
                        hint=f"Add `inputs: {input_names[0]}`.",
                    )
                given = input_names[0]
            else:
                given = model.layers[i - 1].name
        kind, args, problem = call.bind(layer.type, given)
        if problem:
            err(
                (*path, "inputs") if layer.inputs is not None else path,
                problem[0],
                received=problem[1],
                hint=problem[2],
            )
            continue
        node = Node(layer.name, i, layer, kind, args)
        for j, ref in enumerate(node.refs):
            ref_path = (*path, "inputs")
            if isinstance(layer.inputs, list):
                ref_path = (*ref_path, j)
            elif isinstance(layer.inputs, dict):
                ref_path = (*ref_path, node.args[j][0])
            if layer.name in (ref, split_ref(ref)[0]):
                err(
                    ref_path,
                    f"layer '{ref}' takes its own output as input",
                    hint="Reference an earlier layer or a model input.",
                )
            else:
                check_ref(ref, ref_path)
        nodes.append(node)

    # A model output naming a multi-output layer means all of its tensors (Keras returns
    # the list): `outputs: [lstm]` is `outputs: [lstm.0, lstm.1, lstm.2]`.
    written = model.outputs or [model.layers[-1].name]
    outputs: list[str] = []
    for j, out in enumerate(written):
        labels = _labels(model.layers[names[out]]) if out in names else None
        if labels is not None and out not in model.inputs:
            outputs += output_refs(out, len(labels))
            continue
        check_ref(out, ("model", "outputs", j))
        outputs.append(out)
    ordered = _topological(nodes, set(model.inputs), err)
    return Graph(tuple(input_names), tuple(ordered), tuple(outputs)), errors


def _topological(nodes: list[Node], inputs: set[str], err) -> list[Node]:
    """Depth-first order; on a cycle, report it by name (a -> b -> a)."""
    by_name = {n.name: n for n in nodes}
    state: dict[str, int] = {}
    order: list[Node] = []
    reported: set[str] = set()

    def visit(node: Node, stack: list[str]) -> None:
        state[node.name] = 1
        stack.append(node.name)
        for ref in node.refs:
            if ref not in inputs and ref not in by_name:
                ref = split_ref(ref)[0]  # `lstm.1` depends on the layer `lstm`
            if ref in inputs or ref not in by_name:
                continue
            if state.get(ref) == 1:
                cycle = stack[stack.index(ref) :] + [ref]
                if not reported & set(cycle):  # one report per tangle of cycles
                    reported.update(cycle)
                    first = by_name[ref]
                    err(
                        ("model", "layers", first.index, "inputs"),
                        "cycle in the layer graph: " + " -> ".join(cycle),
                        hint="A layer cannot depend on its own output; break the cycle.",
                    )
            elif ref not in state:
                visit(by_name[ref], stack)
        stack.pop()
        state[node.name] = 2
        order.append(node)

    for node in nodes:
        if node.name not in state:
            visit(node, [])
    return order
