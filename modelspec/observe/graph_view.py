"""The layer graph as a picture's data (`modelspec graph`): nodes (inputs, layers, or
whole block uses) with their output shapes and parameter counts, and the edges between
them, like `keras.utils.plot_model(show_shapes=True)`.

Built from a `CheckedSpec` alone (its resolved graph, shapes and source map): pure
Python. A layer expanded from a block has its origin under `blocks.<name>` in the
source map and its name prefixed with the use's name (`stages/0/conv_a`), so a block
use (all its repetitions) collapses into one node: the consecutive block layers that
share the first name segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.graph import Node, split_ref
from modelspec.schema.tensors import format_shape


@dataclass(frozen=True)
class ViewNode:
    """One box of the picture."""

    id: str
    """Unique key (also the SVG node's `<title>`): the layer or input name, or the
    block use's name."""
    kind: str
    """"input", "layer" or "block"."""
    type: str
    """Keras layer type, `InputLayer`, or `block <name> xN` for a collapsed use."""
    shape: str
    """Output shape(s), Keras-style `(None, 8, 8, 32)`."""
    params: int
    layers: int = 1
    """Layers the node stands for (more than one for a collapsed block use)."""
    output: bool = False
    """A model output (drawn with a double border)."""

    @property
    def lines(self) -> tuple[str, ...]:
        """The text lines of the box, top to bottom."""
        what = f"{self.type} ({self.layers} layers)" if self.kind == "block" else self.type
        return (self.id, what, self.shape, f"{self.params:,} params")


@dataclass(frozen=True)
class GraphView:
    """Nodes in graph order (inputs first) and deduplicated edges (source id, target
    id) in the order the layers consume them."""

    name: str
    nodes: tuple[ViewNode, ...]
    edges: tuple[tuple[str, str], ...]


def build_view(spec: CheckedSpec, *, expand_blocks: bool = False) -> GraphView:
    """The picture's graph: every layer (`expand_blocks`) or block uses collapsed."""
    nodes = sorted(spec.graph.nodes, key=lambda n: n.index)
    group = {n.name: n.name for n in nodes} | {i: i for i in spec.graph.inputs}
    if not expand_blocks:
        group.update(_block_groups(spec, nodes))
    outputs = {split_ref(r)[0] for r in spec.graph.outputs}
    edges: dict[tuple[str, str], None] = {}
    for node in nodes:
        for ref in node.refs:
            src, dst = group[split_ref(ref)[0]], group[node.name]
            if src != dst:
                edges[(src, dst)] = None
    view: list[ViewNode] = []
    for name, inp in spec.model.inputs.items():
        shape = format_shape((None, *inp.shape))
        view.append(ViewNode(name, "input", "InputLayer", shape, 0, output=name in outputs))
    members: dict[str, list[Node]] = {}
    for node in nodes:
        members.setdefault(group[node.name], []).append(node)
    for key, group_nodes in members.items():
        if len(group_nodes) == 1 and group_nodes[0].name == key:
            view.append(_layer_node(spec, group_nodes[0], outputs))
        else:
            view.append(_block_node(spec, key, group_nodes, group, outputs))
    return GraphView(spec.name, tuple(view), tuple(edges))


def _shapes(spec: CheckedSpec, node: Node) -> str:
    shape = spec.shapes.get(node.name)
    if shape is None:
        return "?"
    shown = [format_shape(t.shape) for t in shape.outputs]
    return shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"


def _params(spec: CheckedSpec, node: Node) -> int:
    shape = spec.shapes.get(node.name)
    return 0 if shape is None else shape.trainable_count + shape.non_trainable_count


def _layer_node(spec: CheckedSpec, node: Node, outputs: set[str]) -> ViewNode:
    return ViewNode(
        node.name,
        "layer",
        node.layer.type,
        _shapes(spec, node),
        _params(spec, node),
        output=node.name in outputs,
    )


def _block_groups(spec: CheckedSpec, nodes: list[Node]) -> dict[str, str]:
    """Layer name -> its block use's node id, for layers expanded from a block: runs of
    consecutive layers from `blocks.*` whose names share the first segment."""
    taken = {n.name for n in nodes} | set(spec.graph.inputs)
    out: dict[str, str] = {}
    last: tuple[str, int] | None = None  # (first segment, index) of the previous one
    key = ""
    for node in nodes:
        origin = spec.source.origin.get(("model", "layers", node.index), ())
        if not origin or origin[0] != "blocks":
            last = None
            continue
        segment = node.name.split("/", 1)[0]
        if last is None or last[0] != segment or last[1] != node.index - 1:
            key = segment if segment not in taken else f"{segment} (block)"
        out[node.name] = key
        last = (segment, node.index)
    return out


def _block_node(
    spec: CheckedSpec, key: str, members: list[Node], group: dict[str, str], outputs: set[str]
) -> ViewNode:
    """A collapsed block use: the block's name (that of its shallowest layers), the
    repetitions, the summed parameters and the shape of the tensor that leaves it."""
    depth = min(n.name.count("/") for n in members)
    shallow = [n for n in members if n.name.count("/") == depth]
    block = spec.source.origin[("model", "layers", shallow[0].index)][1]
    parts = [n.name.split("/") for n in members]
    reps = {p[1] for p in parts if len(p) > 2 and p[1].isdigit()}
    repeated = len(reps) > 1 and all(len(p) > 2 and p[1].isdigit() for p in parts)
    label = f"block {block}" + (f" x{len(reps)}" if repeated else "")
    inside = {n.name for n in members}
    used_outside = {
        split_ref(r)[0]
        for n in spec.graph.nodes
        if n.name not in inside
        for r in n.refs
        if group.get(split_ref(r)[0]) == key
    }
    leaving = [n for n in members if n.name in used_outside or n.name in outputs] or members
    return ViewNode(
        key,
        "block",
        label,
        _shapes(spec, leaving[-1]),
        sum(_params(spec, n) for n in members),
        layers=len(members),
        output=any(n.name in outputs for n in members),
    )
