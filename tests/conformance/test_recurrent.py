"""Conformance: recurrent layers (LSTM, GRU) against Keras.

Cases with dropout are stochastic (their spec says so): training mode is checked
structurally; tests/compiler/test_rnn_attention_extras.py compares it with Keras's masks.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
SEQ = {"x": ((6, 4), F)}


def rnn(type_: str, id_: str, **layer) -> Case:
    """A case of the recurrent layer `type_` on the one sequence input."""
    return Case(id_, {"type": type_, **layer}, SEQ)


CASES = [
    # LSTM
    rnn("LSTM", "lstm_last", units=5),
    rnn("LSTM", "lstm_sequences", units=3, return_sequences=True),
    rnn("LSTM", "lstm_backwards", units=3, go_backwards=True),
    rnn("LSTM", "lstm_backwards_sequences", units=3, go_backwards=True, return_sequences=True),
    rnn("LSTM", "lstm_no_bias", units=4, use_bias=False),
    rnn("LSTM", "lstm_no_forget_bias", units=4, unit_forget_bias=False),
    rnn(
        "LSTM",
        "lstm_activations",
        units=3,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        return_sequences=True,
    ),
    rnn("LSTM", "lstm_unroll", units=3, unroll=True, return_sequences=True),
    rnn("LSTM", "lstm_dropout", units=3, dropout=0.3, return_sequences=True),
    rnn("LSTM", "lstm_recurrent_dropout", units=3, dropout=0.2, recurrent_dropout=0.4),
    # GRU
    rnn("GRU", "gru_last", units=5),
    rnn("GRU", "gru_sequences", units=3, return_sequences=True),
    rnn("GRU", "gru_backwards_sequences", units=3, go_backwards=True, return_sequences=True),
    rnn("GRU", "gru_no_bias", units=4, use_bias=False),
    rnn("GRU", "gru_reset_before", units=4, reset_after=False, return_sequences=True),
    rnn("GRU", "gru_reset_before_backwards", units=3, reset_after=False, go_backwards=True),
    rnn("GRU", "gru_reset_before_no_bias", units=3, reset_after=False, use_bias=False),
    rnn(
        "GRU",
        "gru_activations",
        units=3,
        activation="softsign",
        recurrent_activation="relu6",
        return_sequences=True,
    ),
    rnn("GRU", "gru_unroll", units=3, unroll=True, go_backwards=True),
    rnn("GRU", "gru_dropout", units=3, dropout=0.3),
    rnn(
        "GRU",
        "gru_recurrent_dropout_reset_before",
        units=3,
        reset_after=False,
        dropout=0.2,
        recurrent_dropout=0.4,
        return_sequences=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_recurrent_layer_matches_keras(case):
    run_case(case)
