"""Conformance: convolutions (Conv1D, Conv2D) against Keras (channels-last).

The cases cover each padding mode with odd sizes (where `same` pads unevenly and the
extra pixel must go at the end), strides, dilation, groups, bias off and activations,
so any disagreement with XLA's SAME rule shows up.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"


def conv2d(**args):
    return {"type": "Conv2D", "filters": 4, "kernel_size": 3, **args}


CASES = [
    # Conv1D
    Case("conv1d_valid", {"type": "Conv1D", "filters": 3, "kernel_size": 3}, {"x": ((7, 2), F)}),
    Case(
        "conv1d_same_stride2",
        {"type": "Conv1D", "filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"},
        {"x": ((9, 3), F)},
    ),
    Case(
        "conv1d_causal_dilated",
        {"type": "Conv1D", "filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
        {"x": ((8, 2), F)},
    ),
    Case(
        "conv1d_causal_stride2",
        {"type": "Conv1D", "filters": 2, "kernel_size": [2], "padding": "causal", "strides": [3]},
        {"x": ((10, 2), F)},
    ),
    Case(
        "conv1d_groups_relu_nobias",
        {
            "type": "Conv1D",
            "filters": 6,
            "kernel_size": 2,
            "groups": 3,
            "activation": "relu",
            "use_bias": False,
        },
        {"x": ((6, 3), F)},
    ),
    Case(
        "conv1d_variable_steps",
        {"type": "Conv1D", "filters": 2, "kernel_size": 3, "padding": "same"},
        {"x": ((None, 2), F)},
    ),
    Case(
        "conv1d_int_input",
        {"type": "Conv1D", "filters": 2, "kernel_size": 2},
        {"x": ((5, 1), "int32")},
    ),
    # Conv2D
    Case("conv2d_valid", conv2d(), {"x": ((6, 5, 2), F)}),
    Case("conv2d_same_odd", conv2d(padding="same"), {"x": ((5, 7, 3), F)}),
    Case(
        "conv2d_same_stride2",
        conv2d(padding="same", strides=2, kernel_size=[3, 2]),
        {"x": ((7, 6, 2), F)},
    ),
    Case("conv2d_valid_stride2", conv2d(strides=[2, 1]), {"x": ((8, 7, 2), F)}),
    Case("conv2d_same_dilation2", conv2d(padding="same", dilation_rate=2), {"x": ((7, 8, 2), F)}),
    Case("conv2d_valid_dilation", conv2d(dilation_rate=[2, 1]), {"x": ((7, 5, 2), F)}),
    Case("conv2d_groups2", conv2d(groups=2, padding="same"), {"x": ((5, 5, 4), F)}),
    Case(
        "conv2d_nobias_gelu",
        conv2d(use_bias=False, activation="gelu", kernel_size=1),
        {"x": ((3, 4, 5), F)},
    ),
    Case("conv2d_frozen", conv2d(trainable=False, filters=2), {"x": ((4, 4, 1), F)}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_conv_layer_matches_keras(case):
    run_case(case)
