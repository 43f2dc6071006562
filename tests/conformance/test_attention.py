"""Conformance: MultiHeadAttention against Keras (named call arguments, causal mask as a
call-time field, attention over several axes)."""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
CASES = [
    Case(
        "mha_self", {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3}, {"x": ((5, 6), F)}
    ),
    Case(
        "mha_cross_lengths",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 4,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((4, 6), F), "v": ((7, 5), F)},
    ),
    Case(
        "mha_explicit_key",
        {
            "type": "MultiHeadAttention",
            "num_heads": 3,
            "key_dim": 2,
            "inputs": {"query": "q", "value": "v", "key": "k"},
        },
        {"q": ((4, 6), F), "v": ((7, 5), F), "k": ((7, 3), F)},
    ),
    Case(
        "mha_list_inputs",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2, "inputs": ["q", "v", "k"]},
        {"q": ((3, 4), F), "v": ((5, 4), F), "k": ((5, 2), F)},
    ),
    Case(
        "mha_output_shape",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 3,
            "output_shape": 7,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((4, 6), F), "v": ((5, 4), F)},
    ),
    # value_dim != key_dim on rank-3 inputs: Keras's fused dot_product_attention path
    # (taken when dropout == 0) fails on the JAX backend, so these use dropout > 0, which
    # sends Keras through its einsum path; inference outputs are still compared exactly.
    Case(
        "mha_value_dim_output_shape",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 3,
            "value_dim": 5,
            "output_shape": 7,
            "dropout": 0.1,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((4, 6), F), "v": ((5, 4), F)},
    ),
    Case(
        "mha_no_bias",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "use_bias": False},
        {"x": ((5, 6), F)},
    ),
    Case(
        "mha_causal_self",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "use_causal_mask": True},
        {"x": ((5, 6), F)},
    ),
    Case(
        "mha_causal_cross_longer_keys",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 3,
            "use_causal_mask": True,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((4, 6), F), "v": ((7, 5), F)},
    ),
    Case(
        "mha_causal_cross_shorter_keys",
        {
            "type": "MultiHeadAttention",
            "num_heads": 1,
            "key_dim": 4,
            "use_causal_mask": True,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((6, 3), F), "v": ((3, 3), F)},
    ),
    # dropout > 0: Keras's einsum path with an explicit `_compute_causal_mask` mask.
    Case(
        "mha_causal_einsum_path",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 3,
            "use_causal_mask": True,
            "dropout": 0.2,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((6, 4), F), "v": ((4, 5), F)},
    ),
    Case(
        "mha_rank4_self",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3},
        {"x": ((3, 4, 5), F)},
    ),
    Case(
        "mha_rank4_cross",
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 2,
            "value_dim": 3,
            "inputs": {"query": "q", "value": "v"},
        },
        {"q": ((2, 3, 4), F), "v": ((4, 2, 5), F)},
    ),
    Case(
        "mha_dropout",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "dropout": 0.5},
        {"x": ((5, 6), F)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_attention_layer_matches_keras(case):
    run_case(case)
