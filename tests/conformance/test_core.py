"""Conformance: core layers (Dense, EinsumDense, Activation, Dropout, Rescaling, Embedding, Identity)
against Keras."""

import keras
import numpy as np
import pytest

from modelspec.schema.layer_args import ACTIVATIONS
from tests.conformance.diagnostics import written
from tests.conformance.harness import Case, run_case

F = "float32"

IDENTITY_CASES = [
    Case("identity", {"type": "Identity"}, {"x": ((4,), F)}),
    Case("identity_variable", {"type": "Identity"}, {"x": ((None, 3, None), F)}),
    Case("identity_int", {"type": "Identity"}, {"x": ((2, 3), "int32")}),
    Case("identity_uint8", {"type": "Identity"}, {"x": ((3,), "uint8")}),
    Case("identity_bool", {"type": "Identity"}, {"x": ((3,), "bool")}),
    # Keras autocasts float inputs to its float32 compute dtype, even here.
    Case("identity_float16", {"type": "Identity"}, {"x": ((3,), "float16")}),
    Case("identity_bfloat16", {"type": "Identity"}, {"x": ((2, 2), "bfloat16")}),
]
"""Identity's cases, also checked for Keras's output dtype (the harness compares values)."""


def einsum(id_: str, equation: str, output_shape, shape: tuple, **layer) -> Case:
    """An EinsumDense case on one float32 input of `shape` (without the batch axis)."""
    args = {"type": "EinsumDense", "equation": equation, "output_shape": output_shape}
    return Case(id_, {**args, **layer}, {"x": (shape, F)})


EINSUM_CASES = [
    einsum("einsum_dense_matmul", "ab,bc->ac", 4, (6,), bias_axes="c"),
    einsum("einsum_no_bias", "ab,bc->ac", [3], (5,)),
    einsum("einsum_sequence", "abc,cd->abd", [None, 5], (4, 3), bias_axes="d", activation="relu"),
    einsum("einsum_variable_steps", "abc,cd->abd", [None, 2], (None, 3), bias_axes="d"),
    einsum("einsum_into_heads", "abc,cde->abde", [None, 2, 3], (4, 6), bias_axes="de"),
    einsum("einsum_bias_inner_axis", "abc,cd->abd", [4, 5], (4, 3), bias_axes="b"),
    einsum("einsum_sum_out_axis", "abc,cd->ad", [5], (4, 3), bias_axes="d"),
    einsum("einsum_left_ellipsis", "...b,bc->...c", 3, (2, 4, 5), bias_axes="c"),
    einsum(
        "einsum_left_ellipsis_shared", "...cd,de->...ce", [None, 2], (None, 3, 4), bias_axes="e"
    ),
    einsum("einsum_left_ellipsis_batch_only", "...ab,bc->...ac", [4], (6,), bias_axes="c"),
    einsum("einsum_right_ellipsis", "ab...,bc->ac...", [5], (4, 3), bias_axes="c"),
    einsum(
        "einsum_initializers",
        "abc,cde->abde",
        [None, 2, 3],
        (4, 6),
        bias_axes="e",
        kernel_initializer="he_normal",
        bias_initializer="ones",
    ),
]
"""EinsumDense: the three equation forms, partial output shapes, bias on any axes."""

CASES = [
    Case("dense", {"type": "Dense", "units": 4}, {"x": ((6,), F)}),
    Case(
        "dense_relu_nobias",
        {"type": "Dense", "units": 3, "activation": "relu", "use_bias": False},
        {"x": ((5,), F)},
    ),
    Case(
        "dense_rank3_gelu", {"type": "Dense", "units": 2, "activation": "gelu"}, {"x": ((4, 3), F)}
    ),
    Case("dense_frozen", {"type": "Dense", "units": 2, "trainable": False}, {"x": ((3,), F)}),
    *[
        Case(f"activation_{a}", {"type": "Activation", "activation": a}, {"x": ((4, 3), F)})
        for a in ACTIVATIONS
    ],
    Case("dropout", {"type": "Dropout", "rate": 0.5}, {"x": ((40,), F)}),
    Case(
        "dropout_noise_shape",
        {"type": "Dropout", "rate": 0.3, "noise_shape": [None, 1, 8]},
        {"x": ((6, 8), F)},
    ),
    Case("rescaling", {"type": "Rescaling", "scale": 0.5, "offset": -1.0}, {"x": ((4,), F)}),
    Case(
        "embedding", {"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"x": ((5,), "int32")}
    ),
    Case(
        "embedding_2d",
        {"type": "Embedding", "input_dim": 7, "output_dim": 3},
        {"x": ((2, 3), "int32")},
        int_high=7,
    ),
    Case(
        "embedding_mask_zero",
        {"type": "Embedding", "input_dim": 5, "output_dim": 3, "mask_zero": True},
        {"x": ((6,), "int32")},
        int_high=5,
    ),
    Case("masking", {"type": "Masking"}, {"x": ((5, 3), F)}),
    # small ints: whole steps equal to mask_value occur, and are zeroed
    Case(
        "masking_int_value",
        {"type": "Masking", "mask_value": 1.0},
        {"x": ((6, 1), "int32")},
        int_high=3,
    ),
    Case("masking_float16", {"type": "Masking", "mask_value": -1.0}, {"x": ((4, 2), "float16")}),
    *IDENTITY_CASES,
    *EINSUM_CASES,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_core_layer_matches_keras(case):
    run_case(case)


# PositionEmbedding (keras_hub vocabulary; its reference is tests/conformance/keras_reference.py)
POSITION_CASES = [
    Case(
        "position_embedding_full",
        {"type": "PositionEmbedding", "sequence_length": 6},
        {"x": ((6, 4), "float32")},
    ),
    Case(
        "position_embedding_shorter_input",
        {"type": "PositionEmbedding", "sequence_length": 9, "initializer": "uniform"},
        {"x": ((5, 3), "float32")},
    ),
]
CASES += POSITION_CASES  # the same list object the parametrize above iterates


def test_position_embedding_longer_input_is_a_positioned_error(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("""modelspec: 1
model:
  inputs: {x: {shape: [12, 4]}}
  layers:
    - {type: PositionEmbedding, sequence_length: 8}
""")
    from modelspec import SpecError, load

    with pytest.raises(SpecError) as err:
        load(spec)
    assert "spec.yaml:5:50: model.layers[0].sequence_length" in str(err.value)
    assert "12 steps" in str(err.value)


def _keras_einsum(shape: tuple, *args, **kwargs):
    """Build Keras's EinsumDense and call it on zeros of `shape` (batch included)."""
    return lambda: keras.layers.EinsumDense(*args, **kwargs)(np.zeros(shape, "float32"))


# (layer as written, input shape, field at fault, its line, message fragment, what Keras
# does with the same arguments, what Keras's error says)
EINSUM_REFUSED = [
    (
        "equation: 'ab->b'\noutput_shape: 3",
        [6],
        "equation",
        10,
        "equations must have the form `ab,bc->ac`",
        _keras_einsum((1, 6), "ab->b", 3),
        "Invalid einsum equation",
    ),
    (
        "equation: abc,cd->abd\noutput_shape: 5",
        [4, 3],
        "output_shape",
        11,
        "needs 2 entries, one per output axis of 'abd' after the batch axis",
        _keras_einsum((1, 4, 3), "abc,cd->abd", 5),
        "do not match at shared dimension 'b'",
    ),
    (
        "equation: abc,cd->abd\noutput_shape: [7, 5]",
        [4, 3],
        "output_shape",
        11,
        "output axis 'b' is shared with the input, whose size there is 4, but output_shape gives 7",
        _keras_einsum((1, 4, 3), "abc,cd->abd", (7, 5)),
        "do not match at shared dimension 'b'",
    ),
    (
        "equation: ab,bc->ad\noutput_shape: 4",
        [6],
        "equation",
        10,
        "output axis 'd' is neither in the input 'ab' nor in the kernel 'bc'",
        _keras_einsum((1, 6), "ab,bc->ad", 4),
        "Dimension 'd' was specified in the output",
    ),
    (
        "equation: ab,bx->ab\noutput_shape: 6",
        [6],
        "equation",
        10,
        "kernel axis 'x' is neither in the input 'ab' nor in the output 'ab'",
        _keras_einsum((1, 6), "ab,bx->ab", 6),
        "Weight dimension 'x' did not have a match",
    ),
    (
        "equation: ab,bc->ac\noutput_shape: 4\nbias_axes: b",
        [6],
        "bias_axes",
        12,
        "bias axis 'b' is not an axis of the output 'ac'",
        _keras_einsum((1, 6), "ab,bc->ac", 4, bias_axes="b"),
        "Bias dimension 'b' was requested",
    ),
    (
        "equation: abc,cd->abd\noutput_shape: [null, 5]",
        [3],
        "equation",
        10,
        "the input part 'abc' names 3 axes, but the input (None, 3) has 2",
        _keras_einsum((1, 3), "abc,cd->abd", (None, 5)),
        "index out of range",
    ),
    (
        "equation: ab,ac->bc\noutput_shape: 4",
        [6],
        "equation",
        10,
        "the first input axis 'a' is the batch axis",
        _keras_einsum((1, 6), "ab,ac->bc", 4),
        None,
    ),
    (
        "equation: ab,bc->ac\noutput_shape: [null]",
        [6],
        "output_shape",
        11,
        "output_shape must give the size of axis 'c'",
        _keras_einsum((1, 6), "ab,bc->ac", (None,)),
        None,
    ),
    (
        "equation: ab,bc->ac\noutput_shape: 4\nbias_axes: ''",
        [6],
        "bias_axes",
        12,
        "at least 1 character",
        _keras_einsum((1, 6), "ab,bc->ac", 4, bias_axes=""),
        None,
    ),
]


@pytest.mark.parametrize("refused", EINSUM_REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_einsum_dense_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """EinsumDense arguments Keras refuses (when built or called) are refused when the
    spec is loaded, on the argument at fault."""
    layer_yaml, shape, field, line, fragment, keras_call, keras_says = refused
    with pytest.raises(Exception, match=keras_says):
        keras_call()
    diag = written(tmp_path, "type: EinsumDense\n" + layer_yaml, shape)
    assert (diag.path, diag.line) == (f"model.layers[0].{field}", line), diag.format()
    assert fragment in diag.message, diag.format()


def test_einsum_dense_kernel_axis_of_unknown_input_size_is_refused(tmp_path):
    layer = "type: EinsumDense\nequation: abc,cd->abd\noutput_shape: [null, 2]"
    diag = written(tmp_path, layer, "[4, null]")
    assert diag.path == "model.layers[0]" and diag.line == 7, diag.format()
    assert "the input axis 'c' must have a known size" in diag.message
