"""Conformance: weight and activity regularizers against Keras's `layer.losses`.

The harness compares, for every case with a regularizer, the sum of our penalties (in
inference mode) with the losses the Keras layer records when called (`_check_penalties`),
besides the usual outputs and weights. These cases cover each field group (kernel/bias,
embeddings, recurrent, depthwise/pointwise, gamma/beta, alpha), weights nested in
sublayers (attention projections), multi-output layers (an activity penalty per output,
as Keras), and `trainable: false` (Keras regularizes trainable weights only)."""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
L1L2 = {"type": "L1L2", "l1": 0.01, "l2": 0.02}

CASES = [
    Case(
        "dense_all",
        {
            "type": "Dense",
            "units": 4,
            "kernel_regularizer": {"type": "L2", "l2": 0.1},
            "bias_regularizer": "l1",
            "activity_regularizer": L1L2,
            "kernel_constraint": "max_norm",
            "bias_constraint": {"type": "MinMaxNorm", "min_value": 0.5, "rate": 0.5},
        },
        {"x": ((6,), F)},
    ),
    Case(
        "dense_orthogonal",
        {
            "type": "Dense",
            "units": 5,
            "kernel_regularizer": {"type": "OrthogonalRegularizer", "mode": "columns"},
            "activity_regularizer": "orthogonal_regularizer",
        },
        {"x": ((6,), F)},
    ),
    Case(
        "dense_frozen",  # the activity penalty stays, the weight penalties go
        {
            "type": "Dense",
            "units": 3,
            "trainable": False,
            "kernel_regularizer": "l2",
            "activity_regularizer": "l1",
        },
        {"x": ((4,), F)},
    ),
    Case(
        "embedding",
        {"type": "Embedding", "input_dim": 10, "output_dim": 3, "embeddings_regularizer": "l2"},
        {"x": ((4,), "int32")},
    ),
    Case(
        "conv2d",
        {
            "type": "Conv2D",
            "filters": 3,
            "kernel_size": 2,
            "kernel_regularizer": L1L2,
            "bias_regularizer": "l2",
            "activity_regularizer": "l2",
            "kernel_constraint": {"type": "MaxNorm", "axis": [0, 1, 2]},
        },
        {"x": ((5, 5, 2), F)},
    ),
    Case(
        "depthwise_conv2d",  # depthwise_regularizer applies to Keras's weight `kernel`
        {
            "type": "DepthwiseConv2D",
            "kernel_size": 2,
            "depthwise_regularizer": "l1",
            "bias_regularizer": "l2",
        },
        {"x": ((4, 4, 2), F)},
    ),
    Case(
        "separable_conv1d",
        {
            "type": "SeparableConv1D",
            "filters": 3,
            "kernel_size": 2,
            "depthwise_regularizer": "l2",
            "pointwise_regularizer": "l1",
            "activity_regularizer": "l1",
        },
        {"x": ((6, 2), F)},
    ),
    Case(
        "conv2d_transpose",
        {"type": "Conv2DTranspose", "filters": 2, "kernel_size": 2, "kernel_regularizer": "l2"},
        {"x": ((3, 3, 2), F)},
    ),
    Case(
        "lstm_states",  # three outputs: an activity penalty on each
        {
            "type": "LSTM",
            "units": 3,
            "return_state": True,
            "kernel_regularizer": "l2",
            "recurrent_regularizer": "l1",
            "bias_regularizer": "l2",
            "activity_regularizer": L1L2,
        },
        {"x": ((4, 2), F)},
    ),
    Case(
        "gru_orthogonal",
        {"type": "GRU", "units": 3, "recurrent_regularizer": "orthogonal_regularizer"},
        {"x": ((4, 2), F)},
    ),
    Case(
        "attention_projections",  # Keras passes them to every projection sublayer
        {
            "type": "MultiHeadAttention",
            "num_heads": 2,
            "key_dim": 3,
            "kernel_regularizer": "l2",
            "bias_regularizer": "l1",
        },
        {"x": ((4, 5), F)},
    ),
    Case(
        "gqa_projections",
        {
            "type": "GroupQueryAttention",
            "head_dim": 3,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "kernel_regularizer": "l2",
            "bias_regularizer": "l1",
        },
        {"x": ((5, 8), F)},
    ),
    Case(
        "einsum_dense",
        {
            "type": "EinsumDense",
            "equation": "ab,bc->ac",
            "output_shape": 4,
            "bias_axes": "c",
            "kernel_regularizer": "l2",
            "bias_regularizer": "l1",
            "activity_regularizer": "l2",
        },
        {"x": ((3,), F)},
    ),
    Case(
        "layer_norm",
        {"type": "LayerNormalization", "gamma_regularizer": "l2", "beta_regularizer": "l1"},
        {"x": ((4, 5), F)},
    ),
    Case(
        "batch_norm",
        {"type": "BatchNormalization", "gamma_regularizer": "l2", "beta_constraint": "non_neg"},
        {"x": ((5,), F)},
    ),
    Case(
        "prelu",
        {"type": "PReLU", "alpha_regularizer": "l2", "activity_regularizer": "l1"},
        {"x": ((5,), F)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_penalties_match_keras(case):
    run_case(case)
