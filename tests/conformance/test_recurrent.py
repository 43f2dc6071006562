"""Conformance: recurrent layers (LSTM, GRU, SimpleRNN) and the wrappers (Bidirectional,
TimeDistributed) against Keras. `return_state` cases are multi-output: the harness
compares every returned tensor (`under_test.0`, `under_test.1`, ...) with Keras's list.

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
    rnn("LSTM", "lstm_state", units=3, return_state=True),
    rnn("LSTM", "lstm_state_sequences", units=4, return_state=True, return_sequences=True),
    rnn(
        "LSTM",
        "lstm_state_backwards_unroll",
        units=3,
        return_state=True,
        go_backwards=True,
        unroll=True,
    ),
    rnn(
        "LSTM", "lstm_state_dropout", units=3, return_state=True, dropout=0.3, recurrent_dropout=0.2
    ),
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
    rnn("GRU", "gru_state", units=3, return_state=True),
    rnn(
        "GRU",
        "gru_state_sequences_backwards",
        units=3,
        return_state=True,
        go_backwards=True,
        return_sequences=True,
    ),
    rnn(
        "GRU",
        "gru_state_reset_before_unroll",
        units=3,
        return_state=True,
        reset_after=False,
        unroll=True,
    ),
    rnn(
        "GRU",
        "gru_recurrent_dropout_reset_before",
        units=3,
        reset_after=False,
        dropout=0.2,
        recurrent_dropout=0.4,
        return_sequences=True,
    ),
    # SimpleRNN
    rnn("SimpleRNN", "simple_rnn_last", units=5),
    rnn("SimpleRNN", "simple_rnn_sequences", units=3, return_sequences=True),
    rnn(
        "SimpleRNN",
        "simple_rnn_backwards_sequences",
        units=3,
        go_backwards=True,
        return_sequences=True,
    ),
    rnn("SimpleRNN", "simple_rnn_no_bias_relu", units=4, use_bias=False, activation="relu"),
    rnn("SimpleRNN", "simple_rnn_state", units=3, return_state=True, return_sequences=True),
    rnn(
        "SimpleRNN",
        "simple_rnn_unroll_backwards",
        units=3,
        unroll=True,
        go_backwards=True,
        return_state=True,
    ),
    rnn("SimpleRNN", "simple_rnn_dropout", units=3, dropout=0.3, recurrent_dropout=0.3),
    # Bidirectional
    rnn("Bidirectional", "bidi_lstm_concat", layer={"type": "LSTM", "units": 3}),
    rnn(
        "Bidirectional",
        "bidi_gru_sum_sequences",
        merge_mode="sum",
        layer={"type": "GRU", "units": 3, "return_sequences": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_simple_rnn_ave",
        merge_mode="ave",
        layer={"type": "SimpleRNN", "units": 4, "return_sequences": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_lstm_mul_named",
        merge_mode="mul",
        layer={"type": "LSTM", "units": 2, "name": "enc"},
    ),
    rnn(
        "Bidirectional",
        "bidi_none_sequences",
        merge_mode=None,
        layer={"type": "GRU", "units": 3, "return_sequences": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_lstm_states",
        layer={"type": "LSTM", "units": 3, "return_state": True, "return_sequences": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_none_states",
        merge_mode=None,
        layer={"type": "SimpleRNN", "units": 3, "return_state": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_backward_layer",
        layer={"type": "LSTM", "units": 3},
        backward_layer={"type": "GRU", "units": 2, "go_backwards": True},
    ),
    rnn(
        "Bidirectional",
        "bidi_backward_states_sequences",
        layer={"type": "GRU", "units": 3, "return_state": True, "return_sequences": True},
        backward_layer={
            "type": "LSTM",
            "units": 3,
            "go_backwards": True,
            "return_state": True,
            "return_sequences": True,
            "name": "back",
        },
    ),
    rnn(
        "Bidirectional", "bidi_frozen_inner", layer={"type": "LSTM", "units": 3, "trainable": False}
    ),
    rnn(
        "Bidirectional",
        "bidi_dropout",
        layer={"type": "LSTM", "units": 3, "dropout": 0.3, "return_sequences": True},
    ),
    # TimeDistributed
    rnn("TimeDistributed", "td_dense", layer={"type": "Dense", "units": 3}),
    rnn(
        "TimeDistributed",
        "td_dense_named_frozen",
        layer={
            "type": "Dense",
            "units": 2,
            "name": "proj",
            "activation": "relu",
            "trainable": False,
        },
    ),
    Case(
        "td_conv2d",
        {"type": "TimeDistributed", "layer": {"type": "Conv2D", "filters": 2, "kernel_size": 3}},
        {"x": ((4, 5, 5, 2), F)},
    ),
    Case(
        "td_lstm",
        {"type": "TimeDistributed", "layer": {"type": "LSTM", "units": 3}},
        {"x": ((2, 6, 4), F)},
    ),
    Case(
        "td_flatten_variable_steps",
        {"type": "TimeDistributed", "layer": {"type": "Flatten"}},
        {"x": ((None, 3, 2), F)},
    ),
    rnn("TimeDistributed", "td_dropout", layer={"type": "Dropout", "rate": 0.5}),
]

SEQ_1D = {"x": ((4, 7, 2), F)}
SEQ_2D = {"x": ((4, 5, 6, 2), F)}
SEQ_3D = {"x": ((3, 4, 5, 4, 2), F)}


def conv_lstm(rank: int, id_: str, **layer) -> Case:
    """A ConvLSTM{rank}D case on a (time, *spatial, channels) input."""
    inputs = {1: SEQ_1D, 2: SEQ_2D, 3: SEQ_3D}[rank]
    return Case(id_, {"type": f"ConvLSTM{rank}D", **layer}, inputs, atol=2e-5)


CONV_LSTM_CASES = [
    conv_lstm(2, "conv_lstm2d_last", filters=3, kernel_size=3),
    conv_lstm(
        2,
        "conv_lstm2d_same_sequences",
        filters=2,
        kernel_size=3,
        padding="same",
        return_sequences=True,
    ),
    conv_lstm(
        2, "conv_lstm2d_strides", filters=3, kernel_size=[3, 2], strides=[2, 1], padding="same"
    ),
    conv_lstm(
        2, "conv_lstm2d_strides_valid", filters=2, kernel_size=2, strides=2, return_sequences=True
    ),
    conv_lstm(
        2,
        "conv_lstm2d_dilation",
        filters=2,
        kernel_size=2,
        dilation_rate=[2, 1],
        padding="same",
        return_sequences=True,
    ),
    conv_lstm(2, "conv_lstm2d_even_kernel", filters=3, kernel_size=[2, 4]),
    conv_lstm(2, "conv_lstm2d_state", filters=3, kernel_size=3, return_state=True),
    conv_lstm(
        2,
        "conv_lstm2d_state_sequences_backwards",
        filters=2,
        kernel_size=3,
        padding="same",
        return_state=True,
        return_sequences=True,
        go_backwards=True,
    ),
    conv_lstm(2, "conv_lstm2d_backwards", filters=2, kernel_size=3, go_backwards=True),
    conv_lstm(2, "conv_lstm2d_no_bias", filters=3, kernel_size=3, use_bias=False),
    conv_lstm(2, "conv_lstm2d_no_forget_bias", filters=3, kernel_size=3, unit_forget_bias=False),
    conv_lstm(
        2,
        "conv_lstm2d_activations",
        filters=2,
        kernel_size=3,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        return_sequences=True,
    ),
    conv_lstm(2, "conv_lstm2d_unroll", filters=2, kernel_size=3, unroll=True, return_state=True),
    conv_lstm(
        2, "conv_lstm2d_dropout", filters=2, kernel_size=3, dropout=0.3, return_sequences=True
    ),
    conv_lstm(
        2,
        "conv_lstm2d_recurrent_dropout",
        filters=2,
        kernel_size=3,
        dropout=0.2,
        recurrent_dropout=0.4,
        return_state=True,
    ),
    conv_lstm(
        2,
        "conv_lstm2d_regularized",
        filters=2,
        kernel_size=3,
        kernel_regularizer="l2",
        recurrent_regularizer={"type": "L1", "l1": 0.1},
        bias_regularizer="l1",
        activity_regularizer="l2",
    ),
    conv_lstm(1, "conv_lstm1d_last", filters=3, kernel_size=3),
    conv_lstm(
        1,
        "conv_lstm1d_same_strides_sequences",
        filters=2,
        kernel_size=3,
        strides=2,
        padding="same",
        return_sequences=True,
    ),
    conv_lstm(
        1,
        "conv_lstm1d_dilation_state_backwards",
        filters=2,
        kernel_size=2,
        dilation_rate=3,
        return_state=True,
        go_backwards=True,
    ),
    conv_lstm(3, "conv_lstm3d_last", filters=2, kernel_size=2),
    conv_lstm(
        3,
        "conv_lstm3d_same_sequences_state",
        filters=2,
        kernel_size=[2, 3, 2],
        padding="same",
        return_sequences=True,
        return_state=True,
    ),
    Case(
        "conv_lstm1d_int_input",  # Keras's conv casts ids to the kernel's float dtype
        {"type": "ConvLSTM1D", "filters": 2, "kernel_size": 2},
        {"x": ((3, 5, 2), "int32")},
        atol=2e-5,
    ),
    Case(  # bfloat16 roundings ordered unlike Keras's: its rounding (test_precision.py)
        "conv_lstm2d_mixed_bfloat16",
        {"type": "ConvLSTM2D", "filters": 2, "kernel_size": 3, "dtype_policy": "mixed_bfloat16"},
        SEQ_2D,
        atol=5e-2,
        rtol=2e-2,
    ),
    conv_lstm(
        2,
        "bidi_conv_lstm2d",
        type="Bidirectional",
        layer={"type": "ConvLSTM2D", "filters": 2, "kernel_size": 3, "return_sequences": True},
    ),
]


CASES += CONV_LSTM_CASES  # the family's cases are `CASES` (test_coverage reads it)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_recurrent_layer_matches_keras(case):
    run_case(case)
