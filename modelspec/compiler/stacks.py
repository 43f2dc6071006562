"""Which repeated block uses scan and which rematerialize (pure Python, no JAX).

Block expansion writes one `model.stacks` entry per repeated use (`schema/stacks.py`).
Here each entry is matched against the resolved graph: its copies are the layers named
`<name>/<i>/...`, and it may scan only when the copies are the same computation — equal
layer arguments, one tensor carried from each copy into the next (of a type that does not
change), the same side inputs, nothing outside reading a copy's inner tensors — and hold
nothing per-layer that a stacked parameter tree cannot express (masks, regularizers,
constraints, frozen or adapted layers, host layers). An explicit `scan: true` that cannot
scan is a positioned error saying why; an unset `scan` silently stays unrolled.

Rematerialization needs less: a copy (scanned or not) becomes one segment whose inputs
and outputs are the tensors crossing its border, run under `jax.checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelspec.compiler.graph import Node, output_refs, split_ref
from modelspec.compiler.infer import input_types
from modelspec.errors import Diagnostic
from modelspec.schema.stacks import SCAN_AUTO_MIN

if TYPE_CHECKING:
    from modelspec.compiler.checked import CheckedSpec

REMAT_POLICIES = ("none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable")


@dataclass(frozen=True)
class Segment:
    """One copy of a rematerialized (unscanned) block use: its layers run as one
    `jax.checkpoint`-ed function from `inputs` to `outputs` (graph refs)."""

    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    remat: str


@dataclass(frozen=True)
class Stack:
    """A scanned block use: `count` copies of the layers `rel` (names relative to a copy),
    run as one scan. `steps` is the copy's plan in relative refs; `carry_in` feeds the
    first copy, `carry_out` (relative) is each copy's output and the next one's input;
    `sides` are outside refs every copy reads unchanged."""

    name: str
    count: int
    remat: str
    copies: tuple[tuple[str, ...], ...]
    rel: tuple[str, ...]
    carry_in: str
    carry_out: str
    sides: tuple[str, ...]

    def prefix(self, i: int) -> str:
        return f"{self.name}/{i}/"

    @property
    def output(self) -> str:
        """The graph ref of the last copy's output (what the rest of the model reads)."""
        return self.prefix(self.count - 1) + self.carry_out

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for copy in self.copies for n in copy)


@dataclass(frozen=True)
class Execution:
    """How the model runs its repeated blocks: scanned stacks and remat segments (each
    layer in at most one of them; every other layer runs on its own)."""

    stacks: tuple[Stack, ...] = ()
    segments: tuple[Segment, ...] = ()

    def owner(self) -> dict[str, Stack | Segment]:
        """Layer name -> the stack or segment that runs it."""
        return {n: unit for unit in (*self.stacks, *self.segments) for n in unit.nodes}


def _copy_nodes(checked: CheckedSpec, name: str, count: int) -> list[list[Node]]:
    prefixes = [f"{name}/{i}/" if count > 1 else f"{name}/" for i in range(count)]
    copies: list[list[Node]] = [[] for _ in prefixes]
    for node in checked.graph.nodes:
        for i, p in enumerate(prefixes):
            if node.name.startswith(p):
                copies[i].append(node)
                break
    return copies


def _layer_data(node: Node) -> Any:
    data = node.layer.model_dump(mode="json", exclude={"name", "inputs"})
    return (node.kind, data)


def _unscannable(checked: CheckedSpec, name: str, copies: list[list[Node]]) -> str | None:
    """Why these copies cannot run as one scan, layer by layer (None if they can)."""
    first = copies[0]
    rels = [[n.name[len(f"{name}/{i}/") :] for n in c] for i, c in enumerate(copies)]
    if any(r != rels[0] for r in rels):
        return "its copies do not have the same layers"
    data0 = [_layer_data(n) for n in first]
    for c in copies[1:]:
        if [_layer_data(n) for n in c] != data0:
            return "its copies' layers have different arguments (e.g. through `${index}`)"
    for n in first:
        layer = type(n.layer)
        if layer.host or layer.adapter:
            return f"layer '{n.name}' is a {'host' if layer.host else 'adapted'} layer"
        if getattr(n.layer, "trainable", True) is False:
            return f"layer '{n.name}' is frozen (`trainable: false`)"
        dumped = n.layer.model_dump(exclude_none=True)
        for key in dumped:
            if key.endswith(("_regularizer", "_constraint")):
                return f"layer '{n.name}' has a {key.replace('_', ' ')}"
        shape = checked.shapes[n.name]
        if shape.mask is not None or shape.graph_mask is not None:
            return f"layer '{n.name}' carries a Keras mask"
    return None


def _chain(
    checked: CheckedSpec, name: str, copies: list[list[Node]]
) -> tuple[str, str, tuple[str, ...]] | str:
    """(carry_in, carry_out relative, side refs), or why the copies are not a chain."""
    count = len(copies)
    prefixes = [f"{name}/{i}/" for i in range(count)]
    names = [{n.name for n in c} for c in copies]

    def classify(ref: str, i: int) -> tuple[str, str]:
        base, _ = split_ref(ref)
        if base in names[i]:
            return ("local", ref[len(prefixes[i]) :])
        if i > 0 and base in names[i - 1]:
            return ("prev", ref[len(prefixes[i - 1]) :])
        return ("ext", ref)

    sigs = [[tuple(classify(r, i) for r in n.refs) for n in c] for i, c in enumerate(copies)]
    prev = {p[1] for sig in sigs[1:] for refs in sig for p in refs if p[0] == "prev"}
    if len(prev) != 1:
        return "each copy must read exactly one tensor of the copy before it"
    carry_out = prev.pop()
    carry_in: set[str] = set()
    for refs1, refs0 in zip(sigs[1], sigs[0], strict=True):
        for (k1, v1), (k0, v0) in zip(refs1, refs0, strict=True):
            if k1 == "prev":
                if k0 != "ext":
                    return "the first copy reads its carried input from inside itself"
                carry_in.add(v0)
            elif (k1, v1) != (k0, v0):
                return "the copies read different outside tensors"
    if len(carry_in) != 1 or any(sig != sigs[1] for sig in sigs[2:]):
        return "the copies are not chained the same way"
    carry = carry_in.pop()
    sides = tuple(
        dict.fromkeys(v for refs in sigs[0] for k, v in refs if k == "ext" and v != carry)
    )
    if carry in sides:
        return "the carried tensor is also read as a side input"
    inner = set().union(*names)
    last_out = prefixes[-1] + carry_out
    outside_reads = [r for n in checked.graph.nodes if n.name not in inner for r in n.refs]
    for ref in (*outside_reads, *checked.graph.outputs):
        base, _ = split_ref(ref)
        if base in inner and ref != last_out:
            return f"'{ref}' inside a copy is read from outside the block"
    out_type = checked.output_type(prefixes[0] + carry_out)
    in_type = checked.output_type(carry) or input_types(checked).get(carry)
    if out_type is None or in_type is None or tuple(out_type.shape) != tuple(in_type.shape):
        return "a copy's output does not have its input's shape"
    if out_type.dtype != in_type.dtype:
        return "a copy's output does not have its input's dtype"
    return carry, carry_out, sides


def _segment(checked: CheckedSpec, copy: list[Node], remat: str) -> Segment:
    names = {n.name for n in copy}
    inputs = dict.fromkeys(r for n in copy for r in n.refs if split_ref(r)[0] not in names)
    # Every inner tensor is an output: unread ones are dead code after tracing, and
    # activity regularizers may tap any of them.
    outputs = tuple(
        r for n in copy for r in output_refs(n.name, len(checked.shapes[n.name].outputs))
    )
    return Segment(tuple(n.name for n in copy), tuple(inputs), outputs, remat)


def resolve(checked: CheckedSpec) -> tuple[Execution, list[Diagnostic]]:
    """The execution plan of `model.stacks`, and positioned errors for entries that do
    not match the model or ask for a scan that cannot be."""
    model = checked.model
    errors: list[Diagnostic] = []
    covered: set[str] = set()
    stacks: list[Stack] = []
    segments: list[Segment] = []
    for k, entry in enumerate(model.stacks):
        where = ("model", "stacks", k)
        copies = _copy_nodes(checked, entry.name, entry.repeat)
        if any(not c for c in copies):
            errors.append(
                checked.error(
                    (*where, "name"),
                    f"stack '{entry.name}': no layers named '{entry.name}/<copy>/...' "
                    f"for each of its {entry.repeat} copies",
                    f"name={entry.name!r}",
                )
            )
            continue
        nodes = {n.name for c in copies for n in c}
        if nodes <= covered:
            continue  # inside a scanned or rematerialized use: runs within its copy
        remat = entry.remat or model.remat
        remat = "full" if remat == "nothing_saveable" else remat
        why = None
        if entry.scan is not False and entry.repeat >= 2:
            why = _unscannable(checked, entry.name, copies)
            chain = None if why else _chain(checked, entry.name, copies)
            why = chain if isinstance(chain, str) else why
        elif entry.scan:
            why = "a use repeated once has nothing to scan"
        scan = entry.scan if entry.scan is not None else entry.repeat >= SCAN_AUTO_MIN
        if scan and why:
            if entry.scan:
                errors.append(
                    checked.error(
                        (*where, "scan"),
                        f"block use '{entry.name}' cannot be scanned: {why}",
                        "scan=True",
                        "Remove `scan: true` (the copies then compile one by one), or "
                        "make the copies identical.",
                    )
                )
                continue
            scan = False
        if scan:
            carry, carry_out, sides = chain  # type: ignore[misc]
            rel = tuple(n.name[len(f"{entry.name}/0/") :] for n in copies[0])
            stacks.append(
                Stack(
                    entry.name,
                    entry.repeat,
                    remat,
                    tuple(tuple(n.name for n in c) for c in copies),
                    rel,
                    carry,
                    carry_out,
                    sides,
                )
            )
            covered |= nodes
        elif remat != "none":
            masked = [
                n.name
                for c in copies
                for n in c
                if checked.shapes[n.name].mask is not None
                or checked.shapes[n.name].graph_mask is not None
            ]
            if masked:
                errors.append(
                    checked.error(
                        (*where, "remat"),
                        f"block use '{entry.name}' cannot be rematerialized: layer "
                        f"'{masked[0]}' carries a Keras mask",
                        f"remat={remat}",
                        "Use `remat: none` for this block.",
                    )
                )
                continue
            segments.extend(_segment(checked, c, remat) for c in copies)
            covered |= nodes
    return Execution(tuple(stacks), tuple(segments)), errors


def stacked_params(checked: CheckedSpec, execution: Execution) -> list[tuple[str, Any]]:
    """(layer key, ParamInfo) of every parameter as the model holds it: a scanned
    stack's parameters once, under the stack's name, with a leading `layers` axis and
    paths relative to a copy (`attention/query/kernel`); every other layer's as
    inferred."""
    stacked = {n: s for s in execution.stacks for n in s.copies[0]}
    skip = {n for s in execution.stacks for c in s.copies[1:] for n in c}
    out = []
    for node in sorted(checked.graph.nodes, key=lambda n: n.index):
        if node.name in skip:
            continue
        stack = stacked.get(node.name)
        for info in checked.shapes[node.name].params:
            if stack is None:
                out.append((node.name, info))
                continue
            rel = node.name[len(stack.prefix(0)) :]
            out.append(
                (
                    stack.name,
                    info.stacked(stack.count, f"{rel}/{info.path}"),
                )
            )
    return out
