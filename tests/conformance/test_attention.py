"""Conformance: the attention layers against Keras (named call arguments, causal mask as
a call-time field, attention over several axes, attention_mask inputs)."""

import keras
import numpy as np
import pytest

from tests.conformance.diagnostics import (
    assert_on_layer_field,
    keras_refuses,
    spec_file_diagnostic,
)
from tests.conformance.harness import Case, run_case

F = "float32"


def mha(id_: str, shapes: dict, **layer) -> Case:
    """A MultiHeadAttention case: the layer's fields and the model inputs' `shapes`."""
    return Case(id_, {"type": "MultiHeadAttention", **layer}, shapes)


def cross(id_: str, query: tuple, value: tuple, **layer) -> Case:
    """Cross-attention of a float32 query `q` to a value `v` (shapes without the batch
    axis), wired by name."""
    shapes = {"q": (query, F), "v": (value, F)}
    return mha(id_, shapes, **layer, inputs={"query": "q", "value": "v"})


def masked(id_: str, query, value, mask, dtype: str, **layer) -> Case:
    """Cross-attention with an `attention_mask` input `m` of `mask` shape and `dtype`
    (ints drawn from {0, 1})."""
    shapes = {"q": (query, F), "v": (value, F), "m": (mask, dtype)}
    inputs = {"query": "q", "value": "v", "attention_mask": "m"}
    return Case(id_, {"type": "MultiHeadAttention", **layer, "inputs": inputs}, shapes, int_high=2)


def dot(id_: str, query, value, key=None, kind: str = "Attention", **layer) -> Case:
    """An Attention (or AdditiveAttention) case wired by name: query `q`, value `v`
    and, when `key` is a shape, key `k`."""
    shapes = {"q": (query, F), "v": (value, F)} | ({"k": (key, F)} if key else {})
    inputs = {"query": "q", "value": "v"} | ({"key": "k"} if key else {})
    return Case(id_, {"type": kind, **layer, "inputs": inputs}, shapes)


def gqa(id_: str, shapes: dict, int_high: int = 10, **layer) -> Case:
    return Case(id_, {"type": "GroupQueryAttention", **layer}, shapes, int_high=int_high)


CASES = [
    mha("mha_self", {"x": ((5, 6), F)}, num_heads=2, key_dim=3),
    cross("mha_cross_lengths", (4, 6), (7, 5), num_heads=2, key_dim=4),
    mha(
        "mha_explicit_key",
        {"q": ((4, 6), F), "v": ((7, 5), F), "k": ((7, 3), F)},
        num_heads=3,
        key_dim=2,
        inputs={"query": "q", "value": "v", "key": "k"},
    ),
    mha(
        "mha_list_inputs",
        {"q": ((3, 4), F), "v": ((5, 4), F), "k": ((5, 2), F)},
        num_heads=2,
        key_dim=2,
        inputs=["q", "v", "k"],
    ),
    cross("mha_output_shape", (4, 6), (5, 4), num_heads=2, key_dim=3, output_shape=7),
    # value_dim != key_dim on rank-3 inputs: Keras's fused dot_product_attention path
    # (taken when dropout == 0) fails on the JAX backend, so these use dropout > 0, which
    # sends Keras through its einsum path; inference outputs are still compared exactly.
    cross(
        "mha_value_dim_output_shape",
        (4, 6),
        (5, 4),
        num_heads=2,
        key_dim=3,
        value_dim=5,
        output_shape=7,
        dropout=0.1,
    ),
    mha("mha_no_bias", {"x": ((5, 6), F)}, num_heads=2, key_dim=3, use_bias=False),
    mha("mha_causal_self", {"x": ((5, 6), F)}, num_heads=2, key_dim=3, use_causal_mask=True),
    cross(
        "mha_causal_cross_longer_keys", (4, 6), (7, 5), num_heads=2, key_dim=3, use_causal_mask=True
    ),
    cross(
        "mha_causal_cross_shorter_keys",
        (6, 3),
        (3, 3),
        num_heads=1,
        key_dim=4,
        use_causal_mask=True,
    ),
    # dropout > 0: Keras's einsum path with an explicit `_compute_causal_mask` mask.
    cross(
        "mha_causal_einsum_path",
        (6, 4),
        (4, 5),
        num_heads=2,
        key_dim=3,
        use_causal_mask=True,
        dropout=0.2,
    ),
    mha("mha_rank4_self", {"x": ((3, 4, 5), F)}, num_heads=2, key_dim=3),
    cross("mha_rank4_cross", (2, 3, 4), (4, 2, 5), num_heads=2, key_dim=2, value_dim=3),
    mha("mha_dropout", {"x": ((5, 6), F)}, num_heads=2, key_dim=3, dropout=0.5),
    # attention_axes: one axis of a rank-4 input (the other is a batch axis), negative
    # axes, several axes in a given order, and the causal mask over one axis.
    mha("mha_axes_2", {"x": ((3, 4, 5), F)}, num_heads=2, key_dim=3, attention_axes=2),
    mha("mha_axes_1", {"x": ((3, 4, 5), F)}, num_heads=2, key_dim=3, attention_axes=[1]),
    mha("mha_axes_negative", {"x": ((3, 4, 5), F)}, num_heads=2, key_dim=2, attention_axes=-2),
    mha("mha_axes_rank5", {"x": ((2, 3, 2, 4), F)}, num_heads=2, key_dim=2, attention_axes=[3, 1]),
    cross("mha_axes_cross", (3, 4, 5), (3, 6, 2), num_heads=2, key_dim=3, attention_axes=[2]),
    mha(
        "mha_axes_causal",
        # Keras builds its causal mask from axis 1, whatever the attention axes, so it
        # only works (and then equals ours, over the attention axis) when sizes agree.
        {"x": ((4, 4, 5), F)},
        num_heads=2,
        key_dim=3,
        attention_axes=[2],
        use_causal_mask=True,
    ),
    # attention_mask: 0/1 ints (random rows are sometimes all masked, where Keras's fused
    # road is uniform and its Softmax-layer road zero), bool, with causal, rank 4 over
    # heads, and over several attention axes.
    masked("mha_mask_int", (4, 6), (5, 6), (4, 5), "int32", num_heads=2, key_dim=3),
    masked("mha_mask_bool", (4, 6), (5, 6), (4, 5), "bool", num_heads=2, key_dim=3),
    masked(
        "mha_mask_dropout_road",
        (4, 6),
        (5, 6),
        (4, 5),
        "int32",
        num_heads=2,
        key_dim=3,
        dropout=0.3,
    ),
    masked(
        "mha_mask_causal",
        (4, 6),
        (5, 6),
        (4, 5),
        "int32",
        num_heads=1,
        key_dim=3,
        use_causal_mask=True,
    ),
    masked("mha_mask_per_head", (4, 6), (5, 6), (2, 4, 5), "int32", num_heads=2, key_dim=3),
    masked("mha_mask_broadcast_rows", (4, 6), (5, 6), (1, 5), "int32", num_heads=2, key_dim=3),
    masked(
        "mha_mask_rank4_axes",
        (2, 3, 4),
        (2, 5, 4),
        (2, 3, 5),
        "int32",
        num_heads=2,
        key_dim=2,
        attention_axes=[2],
    ),
    masked("mha_mask_float", (3, 4), (3, 4), (3, 3), F, num_heads=1, key_dim=2),
    # flash_attention: false is XLA's implementation (Keras reads it as null: XLA on
    # CPU); true on rank-4 inputs is ignored, as on Keras's explicit road.
    mha("mha_flash_false", {"x": ((5, 8), F)}, num_heads=2, key_dim=8, flash_attention=False),
    mha(
        "mha_rank4_flash_ignored",
        {"x": ((3, 4, 5), F)},
        num_heads=2,
        key_dim=8,
        flash_attention=True,
    ),
]

# Every row fully masked (ints drawn below 1): uniform weights on Keras's fused road,
# zero weights (so a zero context, the output bias alone) on its Softmax-layer road.
ALL_MASKED_CASES = [
    Case(c.id + "_all_masked", c.layer, c.inputs, int_high=1)
    for c in CASES
    if c.id in ("mha_mask_int", "mha_mask_dropout_road")
]
CASES += ALL_MASKED_CASES

ATTENTION_CASES = [
    dot("attention_dot", (4, 6), (5, 6)),
    dot("attention_dot_scale", (4, 6), (5, 3), key=(5, 6), use_scale=True),
    dot("attention_concat", (4, 6), (5, 6), score_mode="concat"),
    dot("attention_concat_scale", (4, 3), (5, 3), score_mode="concat", use_scale=True),
    dot("attention_causal", (5, 4), (5, 4), use_causal_mask=True),
    dot("attention_causal_longer_keys", (3, 4), (6, 2), key=(6, 4), use_causal_mask=True),
    dot("attention_rank4", (2, 4, 3), (2, 5, 3)),
    dot("attention_dropout", (4, 6), (5, 6), dropout=0.4),
    Case("attention_self", {"type": "Attention"}, {"x": ((4, 3), F)}),
    dot("additive", (4, 6), (5, 6), kind="AdditiveAttention"),
    dot("additive_no_scale", (4, 6), (5, 2), key=(5, 6), kind="AdditiveAttention", use_scale=False),
    dot("additive_causal", (5, 3), (5, 3), kind="AdditiveAttention", use_causal_mask=True),
    dot("additive_dropout", (4, 3), (5, 3), kind="AdditiveAttention", dropout=0.5),
]
"""Attention and AdditiveAttention (Keras calls them with a list [query, value, key])."""

GQA_CASES = [
    gqa("gqa_self", {"x": ((5, 8), F)}, head_dim=3, num_query_heads=4, num_key_value_heads=2),
    gqa(
        "gqa_multi_query", {"x": ((5, 6), F)}, head_dim=2, num_query_heads=3, num_key_value_heads=1
    ),
    gqa(
        "gqa_cross_key",
        {"q": ((4, 6), F), "v": ((7, 6), F), "k": ((7, 3), F)},
        head_dim=2,
        num_query_heads=2,
        num_key_value_heads=2,
        inputs={"query": "q", "value": "v", "key": "k"},
    ),
    gqa(
        "gqa_no_bias_causal",
        {"x": ((5, 4), F)},
        head_dim=3,
        num_query_heads=4,
        num_key_value_heads=2,
        use_bias=False,
        use_causal_mask=True,
    ),
    gqa(
        "gqa_causal_dropout_road",
        {"x": ((5, 4), F)},
        head_dim=3,
        num_query_heads=2,
        num_key_value_heads=1,
        use_causal_mask=True,
        dropout=0.2,
    ),
    gqa(
        "gqa_mask",
        {"q": ((4, 6), F), "v": ((5, 6), F), "m": ((4, 5), "int32")},
        head_dim=2,
        num_query_heads=4,
        num_key_value_heads=2,
        inputs={"query": "q", "value": "v", "attention_mask": "m"},
        int_high=2,
    ),
    gqa(
        "gqa_mask_dropout_road_causal",
        {"q": ((5, 6), F), "v": ((5, 6), F), "m": ((5, 5), "int32")},
        head_dim=2,
        num_query_heads=2,
        num_key_value_heads=2,
        dropout=0.3,
        use_causal_mask=True,
        inputs={"query": "q", "value": "v", "attention_mask": "m"},
        int_high=2,
    ),
    gqa(
        "gqa_mask_dropout_road",
        {"q": ((4, 6), F), "v": ((5, 6), F), "m": ((4, 5), "int32")},
        head_dim=2,
        num_query_heads=2,
        num_key_value_heads=1,
        dropout=0.3,
        inputs={"query": "q", "value": "v", "attention_mask": "m"},
        int_high=2,
    ),
    *[
        gqa(
            f"gqa_all_masked_dropout_{rate}",
            {"q": ((4, 6), F), "v": ((5, 6), F), "m": ((4, 5), "int32")},
            head_dim=2,
            num_query_heads=2,
            num_key_value_heads=1,
            dropout=rate,
            inputs={"query": "q", "value": "v", "attention_mask": "m"},
            int_high=1,
        )
        for rate in (0.0, 0.3)
    ],
    gqa(
        "gqa_flash_false_causal",
        {"x": ((5, 8), F)},
        head_dim=8,
        num_query_heads=4,
        num_key_value_heads=2,
        use_causal_mask=True,
        flash_attention=False,
    ),
    gqa(
        "gqa_initializers",
        {"x": ((3, 4), F)},
        head_dim=2,
        num_query_heads=2,
        num_key_value_heads=1,
        kernel_initializer="he_uniform",
        bias_initializer="ones",
    ),
]
CASES += ATTENTION_CASES + GQA_CASES  # the same list object the parametrize below iterates


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_attention_layer_matches_keras(case):
    run_case(case)


def _error(tmp_path, inputs: dict[str, str], layer_yaml: str):
    """The one diagnostic of a spec with `inputs` (name -> YAML mapping) and one layer
    written as `layer_yaml`, whose first line is line 7 + len(inputs)."""
    text = "modelspec: 1\nname: t\nmodel:\n  inputs:\n"
    text += "".join(f"    {n}: {spec}\n" for n, spec in inputs.items())
    text += "  layers:\n    - name: under_test\n"
    text += "".join(f"      {line}\n" for line in layer_yaml.strip().splitlines())
    return spec_file_diagnostic(tmp_path, text)


def _keras(kind: str, call: dict, symbolic: bool = False, **args):
    """Build the Keras layer and call it on zeros of the shapes in `call` (a list for
    Attention, keywords otherwise); `symbolic`: on `keras.Input`s, as in a functional
    model (shapes without the batch axis), where Keras checks output shapes."""

    def run():
        if symbolic:
            tensors = {k: keras.Input(v[1:]) for k, v in call.items()}
        else:
            tensors = {k: np.zeros(v, "float32") for k, v in call.items()}
        layer = getattr(keras.layers, kind)(**args)
        return layer(list(tensors.values())) if kind == "Attention" else layer(**tensors)

    return run


X = {"x": "{shape: [4, 6]}"}
QVM = {"q": "{shape: [4, 6]}", "v": "{shape: [5, 6]}", "m": "{shape: [3, 5], dtype: int32}"}
WIRED = "inputs: {query: q, value: v, attention_mask: m}"

# (inputs, layer as written, field at fault, its line, message fragment, Keras's call
# with the same arguments or None, what Keras's error says)
REFUSED = [
    (
        X,
        "type: GroupQueryAttention\nhead_dim: 2\nnum_query_heads: 3\nnum_key_value_heads: 2",
        "num_key_value_heads",
        11,
        "num_query_heads (3) must be divisible by num_key_value_heads",
        _keras("GroupQueryAttention", {}, head_dim=2, num_query_heads=3, num_key_value_heads=2),
        "must be divisible",
    ),
    (
        {"q": "{shape: [4, 6]}", "v": "{shape: [5, 4]}"},
        "type: GroupQueryAttention\nhead_dim: 2\nnum_query_heads: 2\nnum_key_value_heads: 1\n"
        "inputs: {query: q, value: v}",
        "inputs",
        13,
        "must have the same features",
        _keras(
            "GroupQueryAttention",
            {"query": (1, 4, 6), "value": (1, 5, 4)},
            symbolic=True,
            head_dim=2,
            num_query_heads=2,
            num_key_value_heads=1,
        ),
        "must be equal",
    ),
    (
        {"x": "{shape: [3, 4, 6]}"},
        "type: GroupQueryAttention\nhead_dim: 2\nnum_query_heads: 2\nnum_key_value_heads: 1",
        None,
        7,
        "expects rank-3 input (batch, steps, features), got rank 4",
        None,
        None,
    ),
    (
        QVM,
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\n" + WIRED,
        "inputs",
        13,
        "attention_mask (None, 3, 5) does not broadcast to the attention scores (None, 2, 4, 5)",
        _keras(
            "MultiHeadAttention",
            {"query": (1, 4, 6), "value": (1, 5, 6), "attention_mask": (1, 3, 5)},
            num_heads=2,
            key_dim=2,
            dropout=0.1,  # Keras's Softmax-layer road checks the shapes
        ),
        "must be broadcastable",
    ),
    (
        {"x": "{shape: [3, 4, 6]}"},
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\nattention_axes: [3]",
        "attention_axes",
        11,
        "axis 3 is not between the batch and feature axes of a rank-4 query",
        None,
        None,
    ),
    (
        {"x": "{shape: [3, 4, 6]}"},
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\nattention_axes: [2, -2]",
        "attention_axes",
        11,
        "repeated axes",
        None,
        None,
    ),
    (
        {"q": "{shape: [3, 4, 6]}", "v": "{shape: [2, 4, 6]}"},
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\nattention_axes: 2\n"
        "inputs: {query: q, value: v}",
        "inputs",
        13,
        "must match on axis 1, which is not an attention axis",
        None,
        None,
    ),
    (
        X,
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\ndropout: 0.1\nflash_attention: true",
        "flash_attention",
        12,
        "flash attention has no dropout",
        lambda: keras.layers.MultiHeadAttention(2, 2, dropout=0.1, flash_attention=True),
        "Dropout is not supported when flash attention is enabled",
    ),
    (
        X,
        "type: GroupQueryAttention\nhead_dim: 2\nnum_query_heads: 2\nnum_key_value_heads: 1\n"
        "dropout: 0.2\nflash_attention: true",
        "flash_attention",
        13,
        "flash attention has no dropout",
        lambda: keras.layers.GroupQueryAttention(2, 2, 1, dropout=0.2, flash_attention=True),
        "Dropout is not supported when flash attention is enabled",
    ),
    (
        # Keras's call fails too (jax's fused attention has one head size).
        X,
        "type: MultiHeadAttention\nnum_heads: 2\nkey_dim: 2\nvalue_dim: 3\nflash_attention: true",
        "value_dim",
        11,
        "flash attention needs value_dim equal to key_dim",
        None,
        None,
    ),
    (
        X,
        "type: Attention\nscore_mode: additive",
        "score_mode",
        9,
        "'dot'",
        lambda: keras.layers.Attention(score_mode="additive"),
        "Invalid value for argument score_mode",
    ),
    (
        {"q": "{shape: [4, 6]}", "v": "{shape: [5, 3]}"},
        "type: Attention\ninputs: {query: q, value: v}",
        "inputs",
        10,
        "must have the same feature size",
        _keras("Attention", {"query": (1, 4, 6), "value": (1, 5, 3)}),
        None,
    ),
    (
        {"q": "{shape: [4, 6]}", "v": "{shape: [5, 6]}", "k": "{shape: [3, 6]}"},
        "type: AdditiveAttention\ninputs: {query: q, value: v, key: k}",
        "inputs",
        11,
        "must have the same steps",
        None,
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[1].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """Arguments and input shapes Keras refuses are refused when the spec is loaded, on
    the argument at fault (or the layer, for its inputs)."""
    inputs, layer_yaml, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says, (Exception,))
    assert_on_layer_field(_error(tmp_path, inputs, layer_yaml), field, line, fragment)
