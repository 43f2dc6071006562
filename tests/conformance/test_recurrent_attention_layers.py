"""Conformance: LSTM, GRU and MultiHeadAttention against Keras."""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
SEQ = {"x": ((6, 4), F)}
CASES = [
    # LSTM
    Case("lstm_last", {"type": "LSTM", "units": 5}, SEQ),
    Case("lstm_sequences", {"type": "LSTM", "units": 3, "return_sequences": True}, SEQ),
    Case("lstm_backwards", {"type": "LSTM", "units": 3, "go_backwards": True}, SEQ),
    Case(
        "lstm_backwards_sequences",
        {"type": "LSTM", "units": 3, "go_backwards": True, "return_sequences": True},
        SEQ,
    ),
    Case("lstm_no_bias", {"type": "LSTM", "units": 4, "use_bias": False}, SEQ),
    Case("lstm_no_forget_bias", {"type": "LSTM", "units": 4, "unit_forget_bias": False}, SEQ),
    Case(
        "lstm_activations",
        {
            "type": "LSTM",
            "units": 3,
            "activation": "relu",
            "recurrent_activation": "hard_sigmoid",
            "return_sequences": True,
        },
        SEQ,
    ),
    Case(
        "lstm_unroll", {"type": "LSTM", "units": 3, "unroll": True, "return_sequences": True}, SEQ
    ),
    Case(
        "lstm_dropout",
        {"type": "LSTM", "units": 3, "dropout": 0.3, "return_sequences": True},
        SEQ,
        stochastic=True,
    ),
    Case(
        "lstm_recurrent_dropout",
        {"type": "LSTM", "units": 3, "dropout": 0.2, "recurrent_dropout": 0.4},
        SEQ,
        stochastic=True,
    ),
    # GRU
    Case("gru_last", {"type": "GRU", "units": 5}, SEQ),
    Case("gru_sequences", {"type": "GRU", "units": 3, "return_sequences": True}, SEQ),
    Case(
        "gru_backwards_sequences",
        {"type": "GRU", "units": 3, "go_backwards": True, "return_sequences": True},
        SEQ,
    ),
    Case("gru_no_bias", {"type": "GRU", "units": 4, "use_bias": False}, SEQ),
    Case(
        "gru_reset_before",
        {"type": "GRU", "units": 4, "reset_after": False, "return_sequences": True},
        SEQ,
    ),
    Case(
        "gru_reset_before_backwards",
        {"type": "GRU", "units": 3, "reset_after": False, "go_backwards": True},
        SEQ,
    ),
    Case(
        "gru_reset_before_no_bias",
        {"type": "GRU", "units": 3, "reset_after": False, "use_bias": False},
        SEQ,
    ),
    Case(
        "gru_activations",
        {
            "type": "GRU",
            "units": 3,
            "activation": "softsign",
            "recurrent_activation": "relu6",
            "return_sequences": True,
        },
        SEQ,
    ),
    Case("gru_unroll", {"type": "GRU", "units": 3, "unroll": True, "go_backwards": True}, SEQ),
    Case("gru_dropout", {"type": "GRU", "units": 3, "dropout": 0.3}, SEQ, stochastic=True),
    Case(
        "gru_recurrent_dropout_reset_before",
        {
            "type": "GRU",
            "units": 3,
            "reset_after": False,
            "dropout": 0.2,
            "recurrent_dropout": 0.4,
            "return_sequences": True,
        },
        SEQ,
        stochastic=True,
    ),
    # MultiHeadAttention
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
        stochastic=True,
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
        stochastic=True,
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
        stochastic=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_recurrent_attention_layer_matches_keras(case):
    run_case(case)
