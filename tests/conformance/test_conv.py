"""Conformance: convolutions (Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D,
Conv1D/2D/3DTranspose) against Keras (channels-last).

The cases cover each padding mode with odd sizes (where `same` pads unevenly and the
extra pixel must go at the end), strides, dilation, groups, depth_multiplier, bias off
and activations, so any disagreement with XLA's SAME rule shows up. The transposed
convolutions add every branch of Keras's padding rule: `valid` with a stride larger
than the kernel (the default output_padding fills the gap), `same` with even and odd
kernels, explicit output_padding under both, and dilation.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"


def conv2d(**args):
    return {"type": "Conv2D", "filters": 4, "kernel_size": 3, **args}


def one(id_: str, layer_type: str, shape: tuple, dtype: str = F, **layer) -> Case:
    """A case of `layer_type` on one input `x` of `shape` (without the batch axis)."""
    return Case(id_, {"type": layer_type, **layer}, {"x": (shape, dtype)})


DW1, DW2, SEP1, SEP2 = "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"
T1, T2, T3 = "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"


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
    # Conv3D
    one("conv3d_valid", "Conv3D", (5, 4, 6, 2), filters=2, kernel_size=3),
    one(
        "conv3d_same_stride2",
        "Conv3D",
        (5, 6, 7, 2),
        filters=3,
        kernel_size=[3, 2, 3],
        strides=2,
        padding="same",
    ),
    one(
        "conv3d_dilated_groups_relu",
        "Conv3D",
        (4, 6, 5, 4),
        filters=4,
        kernel_size=2,
        dilation_rate=[1, 2, 1],
        groups=2,
        activation="relu",
    ),
    one(
        "conv3d_variable_nobias",
        "Conv3D",
        (None, 4, 3, 1),
        filters=2,
        kernel_size=[1, 3, 2],
        padding="same",
        use_bias=False,
    ),
    one("conv3d_int_input", "Conv3D", (3, 3, 3, 1), "int32", filters=2, kernel_size=2),
    # DepthwiseConv1D / 2D (Keras accepts strides > 1 with dilation > 1 here)
    one("dw1d_valid", DW1, (7, 3), kernel_size=3),
    one(
        "dw1d_same_stride2_mult3",
        DW1,
        (9, 2),
        kernel_size=4,
        strides=2,
        padding="same",
        depth_multiplier=3,
    ),
    one("dw1d_stride_and_dilation", DW1, (11, 2), kernel_size=3, strides=2, dilation_rate=2),
    one(
        "dw1d_variable_nobias_relu",
        DW1,
        (None, 3),
        kernel_size=2,
        padding="same",
        use_bias=False,
        activation="relu",
    ),
    one("dw2d_valid", DW2, (6, 5, 2), kernel_size=3),
    one(
        "dw2d_same_odd_mult2",
        DW2,
        (7, 6, 3),
        kernel_size=[3, 2],
        strides=[2, 1],
        padding="same",
        depth_multiplier=2,
    ),
    one("dw2d_same_dilation2", DW2, (7, 8, 2), kernel_size=3, padding="same", dilation_rate=2),
    one(
        "dw2d_same_stride_dilation",
        DW2,
        (9, 8, 2),
        kernel_size=3,
        padding="same",
        strides=2,
        dilation_rate=[2, 1],
    ),
    one(
        "dw2d_float16_frozen_tanh",
        DW2,
        (4, 5, 2),
        "float16",
        kernel_size=2,
        trainable=False,
        activation="tanh",
    ),
    # SeparableConv1D / 2D
    one("sep1d_valid", SEP1, (8, 3), filters=4, kernel_size=3),
    one(
        "sep1d_same_stride3_mult2",
        SEP1,
        (10, 2),
        filters=2,
        kernel_size=4,
        strides=3,
        padding="same",
        depth_multiplier=2,
    ),
    one(
        "sep1d_stride_dilation_nobias_gelu",
        SEP1,
        (9, 2),
        filters=3,
        kernel_size=2,
        strides=2,
        dilation_rate=2,
        use_bias=False,
        activation="gelu",
    ),
    one("sep2d_valid", SEP2, (6, 5, 2), filters=4, kernel_size=3),
    one(
        "sep2d_same_stride2_mult3",
        SEP2,
        (7, 6, 2),
        filters=3,
        kernel_size=[3, 2],
        strides=2,
        padding="same",
        depth_multiplier=3,
    ),
    one(
        "sep2d_variable_dilated_sigmoid",
        SEP2,
        (None, 5, 2),
        filters=2,
        kernel_size=2,
        padding="same",
        dilation_rate=[2, 1],
        activation="sigmoid",
    ),
    # Conv1DTranspose
    one("t1d_valid", T1, (5, 2), filters=3, kernel_size=3),
    one("t1d_valid_stride_over_kernel", T1, (4, 2), filters=2, kernel_size=2, strides=3),
    one("t1d_same_stride2_odd", T1, (5, 2), filters=3, kernel_size=3, strides=2, padding="same"),
    one("t1d_same_stride2_even", T1, (5, 3), filters=2, kernel_size=4, strides=2, padding="same"),
    one(
        "t1d_valid_output_padding",
        T1,
        (4, 2),
        filters=2,
        kernel_size=3,
        strides=3,
        output_padding=2,
    ),
    one(
        "t1d_same_output_padding",
        T1,
        (5, 2),
        filters=2,
        kernel_size=4,
        strides=3,
        padding="same",
        output_padding=[1],
    ),
    one(
        "t1d_same_output_padding0_even",
        T1,
        (5, 2),
        filters=2,
        kernel_size=2,
        strides=2,
        padding="same",
        output_padding=0,
    ),
    one("t1d_same_dilated", T1, (6, 2), filters=2, kernel_size=3, dilation_rate=2, padding="same"),
    one("t1d_valid_dilated", T1, (6, 2), filters=2, kernel_size=2, dilation_rate=3),
    one(
        "t1d_stride2_nobias_relu",
        T1,
        (5, 2),
        filters=3,
        kernel_size=3,
        strides=2,
        use_bias=False,
        activation="relu",
    ),
    # Conv2DTranspose
    one("t2d_valid", T2, (4, 5, 2), filters=3, kernel_size=3),
    one("t2d_same_stride2", T2, (3, 4, 2), filters=2, kernel_size=3, strides=2, padding="same"),
    one(
        "t2d_same_output_padding",
        T2,
        (3, 3, 2),
        filters=2,
        kernel_size=[3, 4],
        strides=[2, 3],
        padding="same",
        output_padding=[1, 2],
    ),
    one(
        "t2d_valid_output_padding",
        T2,
        (3, 4, 2),
        filters=2,
        kernel_size=2,
        strides=[2, 3],
        output_padding=[0, 1],
    ),
    one("t2d_valid_dilated", T2, (4, 4, 3), filters=2, kernel_size=3, dilation_rate=[2, 1]),
    one(
        "t2d_nobias_float16_silu",
        T2,
        (3, 3, 2),
        "float16",
        filters=2,
        kernel_size=2,
        strides=2,
        use_bias=False,
        activation="silu",
    ),
    # Conv3DTranspose
    one("t3d_valid", T3, (2, 3, 2, 2), filters=2, kernel_size=2),
    one(
        "t3d_same_output_padding",
        T3,
        (2, 3, 2, 1),
        filters=2,
        kernel_size=3,
        strides=[2, 1, 2],
        padding="same",
        output_padding=[1, 0, 0],
    ),
    one(
        "t3d_same_dilated_frozen",
        T3,
        (3, 2, 3, 2),
        filters=1,
        kernel_size=[2, 3, 2],
        dilation_rate=2,
        padding="same",
        trainable=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_conv_layer_matches_keras(case):
    run_case(case)
