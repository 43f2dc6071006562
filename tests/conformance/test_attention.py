"""Conformance: MultiHeadAttention against Keras (named call arguments, causal mask as a
call-time field, attention over several axes)."""

import pytest

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
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_attention_layer_matches_keras(case):
    run_case(case)
