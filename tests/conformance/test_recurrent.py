"""Conformance: recurrent layers (LSTM, GRU) against Keras.

Cases with dropout are stochastic (their spec says so): training mode is checked
structurally; tests/test_rnn_attention_extras.py compares it with Keras's masks.
"""

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
    ),
    Case(
        "lstm_recurrent_dropout",
        {"type": "LSTM", "units": 3, "dropout": 0.2, "recurrent_dropout": 0.4},
        SEQ,
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
    Case("gru_dropout", {"type": "GRU", "units": 3, "dropout": 0.3}, SEQ),
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
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_recurrent_layer_matches_keras(case):
    run_case(case)
