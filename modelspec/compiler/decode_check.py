"""Whether a checked model can generate tokens with a KV cache (`modelspec generate`).

Generation feeds the prompt once (prefill at position 0), then one new token at a
time. That gives the full model's answer only if every layer computes each sequence
position from that position alone ("positionwise"), from its absolute position
(PositionEmbedding: "offset"), or from the earlier positions through a cache (causal
self-attention: "cached") — the layers' `decode` / `decode_kind` (see
`schema/layers/base.py`). This module finds every reason a model does not qualify, at
once, as positioned diagnostics; and the facts generation needs from the spec (how
many positions the model allows, the vocabulary sizes, whether the output is already
a softmax). Pure Python: `generate` runs it before JAX is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.graph import Node, split_ref
from modelspec.compiler.infer import input_types, node_inputs
from modelspec.errors import Diagnostic
from modelspec.schema.precision import POLICIES, layer_policy
from modelspec.schema.tensors import TensorType

TOKEN_DTYPES = ("int32", "int64", "int8", "uint8")
"""Model input dtypes that can hold token ids."""

_WHY = (
    "generation runs the model on the new positions only (one token at a time, earlier "
    "positions kept in a KV cache), which layers that mix sequence positions cannot do"
)
_MIXING_HINT = (
    "Mix positions with causal self-attention (MultiHeadAttention or GroupQueryAttention "
    "with `use_causal_mask: true`) instead."
)


def decode_problems(checked: CheckedSpec) -> list[Diagnostic]:
    """Every reason the model cannot generate with a KV cache, positioned at the layer
    (or input/output) at fault; empty when it can."""
    problems = _io_problems(checked)
    types = _all_types(checked)
    masked = {ref for ref, shape in checked.shapes.items() if shape.mask is not None}
    for node in checked.graph.nodes:
        problems += _node_problems(checked, node, types, masked)
    return problems


def _all_types(checked: CheckedSpec) -> dict[str, TensorType]:
    """Every tensor's type by reference: model inputs, layers, `layer.i` outputs."""
    types = dict(input_types(checked))
    for name, shape in checked.shapes.items():
        types[name] = shape.output
        for i, t in enumerate(shape.outputs):
            types[f"{name}.{i}"] = t
    return types


def _io_problems(checked: CheckedSpec) -> list[Diagnostic]:
    """One integer input of shape (batch, steps); one output (batch, steps, vocab)."""
    problems = []
    inputs = checked.model.inputs
    if len(inputs) != 1:
        problems.append(
            checked.error(
                ("model", "inputs"),
                f"generation needs exactly one model input (the token ids), but the model "
                f"has {len(inputs)}",
                received=", ".join(inputs),
            )
        )
    else:
        ((name, spec),) = inputs.items()
        if len(spec.shape) != 1 or spec.dtype not in TOKEN_DTYPES:
            problems.append(
                checked.error(
                    ("model", "inputs", name),
                    f"generation needs token ids of shape (batch, steps) with an integer "
                    f"dtype as the model input, but '{name}' is {spec.dtype} with shape "
                    f"{[None, *spec.shape]}",
                    hint="Declare it as `{shape: [steps], dtype: int32}`.",
                )
            )
    outputs = checked.graph.outputs
    if len(outputs) != 1:
        problems.append(
            checked.error(
                ("model", "outputs"),
                f"generation needs exactly one model output (the next-token scores), but "
                f"the model has {len(outputs)}",
                received=", ".join(outputs),
            )
        )
        return problems
    out = checked.output_type(outputs[0])
    if out is None or out.rank != 3 or out.shape[-1] is None:
        problems.append(
            checked.error(
                _output_path(checked, outputs[0]),
                f"generation needs an output of shape (batch, steps, vocabulary): scores "
                f"for the next token at every position, but '{outputs[0]}' is "
                f"{out if out is not None else 'a model input'}",
            )
        )
        return problems
    limit = input_vocabulary(checked)
    if limit is not None and out.shape[-1] > limit[0]:
        problems.append(
            checked.error(
                _output_path(checked, outputs[0]),
                f"the output scores {out.shape[-1]} tokens, but {limit[1]} takes ids below "
                f"{limit[0]}: a generated token could not be fed back",
                received=f"vocabulary={out.shape[-1]}",
                hint=f"Give the output {limit[0]} units, or the Embedding input_dim "
                f"{out.shape[-1]}.",
            )
        )
    return problems


def _output_path(checked: CheckedSpec, ref: str) -> tuple:
    """Where the output's layer is written."""
    base, _ = split_ref(ref)
    for node in checked.graph.nodes:
        if node.name == base:
            return ("model", "layers", node.index)
    return ("model", "outputs")


def _node_problems(
    checked: CheckedSpec, node: Node, types: dict[str, TensorType], masked: set[str]
) -> list[Diagnostic]:
    """The reasons one layer cannot run in generation."""
    layer, cls = node.layer, type(node.layer)
    path = ("model", "layers", node.index)
    label = f"{layer.type} layer '{node.name}'"
    if cls.host:
        return [
            checked.error(
                path,
                f"{label} runs on the host (it reads strings), but generation feeds token "
                "ids to the model",
                hint="Generate with a model whose input is the token ids.",
            )
        ]
    inputs = node_inputs(node, types)
    first = (
        inputs["query"]
        if isinstance(inputs, dict)
        else (inputs[0] if isinstance(inputs, list) else inputs)
    )
    kind = layer.decode_kind(first.rank)
    problems = []
    if kind is None:
        problems.append(
            checked.error(
                path,
                f"{label} mixes sequence positions: {_WHY}",
                received=f"{layer.type} on {first}",
                hint=_MIXING_HINT,
            )
        )
    elif kind == "cached":
        problems += _attention_problems(checked, node, inputs, label)
    elif kind == "offset" and first.rank != 3:
        problems.append(
            checked.error(
                path,
                f"{label} indexes positions along axis -2, which is the sequence axis only "
                f"for (batch, steps, features) inputs; its input is {first}",
            )
        )
    if checked.shapes[node.name].mask is not None and not masked.intersection(node.refs):
        problems.append(
            checked.error(
                path,
                f"{label} starts a Keras mask (`mask_zero` / Masking), which generation "
                "does not carry: the cached positions would not be masked as in the full "
                "model",
                hint="Use `mask_zero: false` (padding is not needed when generating).",
            )
        )
    return problems


def _attention_problems(
    checked: CheckedSpec, node: Node, inputs: dict[str, TensorType], label: str
) -> list[Diagnostic]:
    """A cached attention layer must be causal self-attention over (batch, steps,
    features): each new position then needs only the earlier positions' keys and
    values, which the cache holds."""
    path = ("model", "layers", node.index)
    args = dict(node.args)
    problems = []
    if not node.layer.use_causal_mask:
        problems.append(
            checked.error(
                (*path, "use_causal_mask"),
                f"{label} is not causal: every position attends to later ones, which do "
                "not exist yet while generating",
                received="use_causal_mask=false",
                hint="Set `use_causal_mask: true` (and train with it).",
            )
        )
    sources = {args[a] for a in ("query", "value", "key") if a in args}
    if len(sources) != 1:
        shown = ", ".join(f"{a}={args[a]}" for a in ("query", "value", "key") if a in args)
        problems.append(
            checked.error(
                (*path, "inputs"),
                f"{label} is not self-attention: generation caches the keys and values of "
                "the sequence being generated, so query, value and key must be one tensor",
                received=shown,
            )
        )
    if "attention_mask" in args:
        problems.append(
            checked.error(
                (*path, "inputs"),
                f"{label} takes an attention_mask tensor, which covers the full sequence "
                "and cannot follow the positions generated one at a time",
                received=f"attention_mask={args['attention_mask']}",
                hint="Drop attention_mask; `use_causal_mask: true` gives the causal mask.",
            )
        )
    if inputs["query"].rank != 3:
        problems.append(
            checked.error(
                path,
                f"{label} attends over {inputs['query']}; generation caches attention over "
                "(batch, steps, features) only",
            )
        )
    return problems


def input_vocabulary(checked: CheckedSpec) -> tuple[int, str] | None:
    """The smallest `input_dim` of the Embeddings that read the model input (token ids
    must be below it), with the layer in words; None when no Embedding reads it."""
    found = [
        (node.layer.input_dim, f"Embedding '{node.name}'")
        for node in checked.graph.nodes
        if node.layer.type == "Embedding" and set(node.refs) & set(checked.model.inputs)
    ]
    return min(found) if found else None


def output_vocabulary(checked: CheckedSpec) -> int:
    """The size of the output's last axis (the tokens it scores)."""
    return checked.output_type(checked.graph.outputs[0]).shape[-1]


@dataclass(frozen=True)
class PositionLimit:
    """The most positions (prompt + generated tokens) the model allows, and why."""

    length: int
    reason: str


def position_limit(checked: CheckedSpec) -> PositionLimit | None:
    """The fewest positions a PositionEmbedding table or the declared input length
    allows; None when neither bounds the sequence."""
    limits = []
    for name, spec in checked.model.inputs.items():
        if spec.shape and spec.shape[0] is not None:
            limits.append(
                PositionLimit(spec.shape[0], f"the model input '{name}' has {spec.shape[0]} steps")
            )
    for node in checked.graph.nodes:
        if node.layer.type == "PositionEmbedding":
            n = node.layer.sequence_length
            limits.append(
                PositionLimit(n, f"PositionEmbedding '{node.name}' has sequence_length={n}")
            )
    return min(limits, key=lambda limit: limit.length) if limits else None


def outputs_probabilities(checked: CheckedSpec) -> bool:
    """Whether the output layer ends in a softmax over the vocabulary: generation then
    samples from its probabilities (their logarithm as the scores) instead of treating
    the output as logits."""
    base, _ = split_ref(checked.graph.outputs[0])
    node = next((n for n in checked.graph.nodes if n.name == base), None)
    if node is None:
        return False
    layer = node.layer
    if layer.type == "Softmax":
        axes = [layer.axis] if isinstance(layer.axis, int) else list(layer.axis)
        return axes in ([-1], [2])
    return getattr(layer, "activation", None) == "softmax"


def cache_dtype(checked: CheckedSpec) -> str:
    """The dtype of the KV caches: the compute dtype of the cached attention layers
    (bfloat16 under `mixed_bfloat16`: what their projections produce, so nothing is
    rounded), float32 when their policies differ."""
    dtypes = {
        POLICIES[layer_policy(node.layer, checked.model)][0]
        for node in checked.graph.nodes
        if type(node.layer).decode == "cached"
    }
    return dtypes.pop() if len(dtypes) == 1 else "float32"
