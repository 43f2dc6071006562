"""Conformance: activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) against Keras.

Besides the harness, every case checks that Keras's output dtype is the inferred one:
the harness compares values, and these layers' dtypes for int inputs follow Keras's
arithmetic (a plain ReLU keeps int32, a negative slope makes float32).
"""

import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from tests.conformance.harness import Case, run_case, spec_for

F = "float32"
INT = "int32"

CASES = [
    # ReLU: each branch of Keras's ReLU (plain, leaky shortcut, relu6 shortcut, clip,
    # threshold, all three), on floats and ints.
    Case("relu", {"type": "ReLU"}, {"x": ((6,), F)}),
    Case("relu_rank4", {"type": "ReLU"}, {"x": ((3, 4, 2), F)}),
    Case("relu_max6", {"type": "ReLU", "max_value": 6}, {"x": ((8,), F)}),
    Case("relu_max_half", {"type": "ReLU", "max_value": 0.5}, {"x": ((8,), F)}),
    Case("relu_max0", {"type": "ReLU", "max_value": 0}, {"x": ((4,), F)}),
    Case("relu_slope", {"type": "ReLU", "negative_slope": 0.1}, {"x": ((8,), F)}),
    Case("relu_threshold", {"type": "ReLU", "threshold": 0.3}, {"x": ((8,), F)}),
    Case(
        "relu_all_args",
        {"type": "ReLU", "max_value": 1.2, "negative_slope": 0.5, "threshold": 0.2},
        {"x": ((None, 4), F)},
    ),
    Case(
        "relu_slope_max6", {"type": "ReLU", "max_value": 6, "negative_slope": 0.2}, {"x": ((5,), F)}
    ),
    Case("relu_variable", {"type": "ReLU", "threshold": 0.1}, {"x": ((None, None), F)}),
    Case("relu_float16", {"type": "ReLU", "max_value": 1.0}, {"x": ((4,), "float16")}),
    Case("relu_bfloat16", {"type": "ReLU"}, {"x": ((4,), "bfloat16")}),
    Case("relu_int", {"type": "ReLU"}, {"x": ((5,), INT)}),
    Case("relu_int_max6", {"type": "ReLU", "max_value": 6}, {"x": ((5,), INT)}),
    # Keras casts threshold and max_value to the integer type: 2.5 clips at 2.
    Case(
        "relu_int_truncated",
        {"type": "ReLU", "max_value": 2.5, "threshold": 1.5},
        {"x": ((9,), INT)},
    ),
    Case(
        "relu_int_slope",
        {"type": "ReLU", "negative_slope": 0.5, "threshold": 3},
        {"x": ((6,), INT)},
    ),
    Case("relu_int8", {"type": "ReLU", "max_value": 4}, {"x": ((6,), "int8")}),
    # uint8 negation wraps around in Keras too.
    Case(
        "relu_uint8_slope",
        {"type": "ReLU", "negative_slope": 0.5, "max_value": 3},
        {"x": ((6,), "uint8")},
    ),
    Case("relu_bool", {"type": "ReLU"}, {"x": ((6,), "bool")}),
    Case("relu_bool_slope", {"type": "ReLU", "negative_slope": 0.5}, {"x": ((6,), "bool")}),
    Case("relu_frozen", {"type": "ReLU", "trainable": False}, {"x": ((3,), F)}),
    # LeakyReLU
    Case("leaky_relu", {"type": "LeakyReLU"}, {"x": ((6,), F)}),
    Case("leaky_relu_zero", {"type": "LeakyReLU", "negative_slope": 0}, {"x": ((2, 3), F)}),
    Case("leaky_relu_steep", {"type": "LeakyReLU", "negative_slope": 1.5}, {"x": ((None, 3), F)}),
    Case("leaky_relu_int", {"type": "LeakyReLU", "negative_slope": 0.1}, {"x": ((4,), INT)}),
    Case("leaky_relu_float16", {"type": "LeakyReLU"}, {"x": ((4,), "float16")}),
    # PReLU: alpha shaped by the input, size 1 along the shared axes.
    Case("prelu", {"type": "PReLU"}, {"x": ((5,), F)}),
    Case("prelu_rank3", {"type": "PReLU"}, {"x": ((4, 3), F)}),
    Case("prelu_channels", {"type": "PReLU", "shared_axes": [1, 2]}, {"x": ((4, 5, 3), F)}),
    Case("prelu_shared_int", {"type": "PReLU", "shared_axes": 2}, {"x": ((4, 3), F)}),
    Case("prelu_shared_all", {"type": "PReLU", "shared_axes": [2, 1]}, {"x": ((4, 3), F)}),
    Case("prelu_variable_shared", {"type": "PReLU", "shared_axes": 1}, {"x": ((None, 3), F)}),
    Case("prelu_scalar_input", {"type": "PReLU"}, {"x": ((), F)}),
    Case(
        "prelu_initializer",
        {"type": "PReLU", "alpha_initializer": {"type": "Constant", "value": 0.25}},
        {"x": ((3,), F)},
    ),
    Case(
        "prelu_class_name_initializer",
        {"type": "PReLU", "alpha_initializer": "Ones"},
        {"x": ((3,), F)},
    ),
    Case("prelu_int", {"type": "PReLU"}, {"x": ((4,), INT)}),
    Case("prelu_float16", {"type": "PReLU"}, {"x": ((4,), "float16")}),
    Case("prelu_frozen", {"type": "PReLU", "trainable": False}, {"x": ((2, 2), F)}),
    # ELU
    Case("elu", {"type": "ELU"}, {"x": ((6,), F)}),
    Case("elu_alpha", {"type": "ELU", "alpha": 0.5}, {"x": ((2, 3), F)}),
    Case("elu_negative_alpha", {"type": "ELU", "alpha": -1.0}, {"x": ((4,), F)}),
    Case("elu_variable", {"type": "ELU"}, {"x": ((None, 3), F)}),
    Case("elu_int", {"type": "ELU"}, {"x": ((4,), INT)}),
    Case("elu_bfloat16", {"type": "ELU", "alpha": 2.0}, {"x": ((4,), "bfloat16")}),
    # Softmax: one axis, several axes jointly, negative axes.
    Case("softmax", {"type": "Softmax"}, {"x": ((6,), F)}),
    Case("softmax_axis1", {"type": "Softmax", "axis": 1}, {"x": ((4, 3), F)}),
    Case("softmax_axis_neg2", {"type": "Softmax", "axis": -2}, {"x": ((2, 4, 3), F)}),
    Case("softmax_axes", {"type": "Softmax", "axis": [1, 2]}, {"x": ((4, 3), F)}),
    Case("softmax_axes_unordered", {"type": "Softmax", "axis": [-1, 1]}, {"x": ((2, 4, 3), F)}),
    Case("softmax_axis_list1", {"type": "Softmax", "axis": [2]}, {"x": ((4, 3), F)}),
    Case("softmax_variable", {"type": "Softmax"}, {"x": ((None, 5), F)}),
    Case("softmax_over_variable", {"type": "Softmax", "axis": [1, 2]}, {"x": ((None, 2), F)}),
    Case("softmax_int", {"type": "Softmax"}, {"x": ((5,), INT)}),
    Case("softmax_int_axes", {"type": "Softmax", "axis": [1, 2]}, {"x": ((2, 3), INT)}),
    Case("softmax_float16", {"type": "Softmax"}, {"x": ((5,), "float16")}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_activation_layer_matches_keras(case):
    run_case(case)


def error(layer, shape=(4, 3), dtype=F):
    """The one diagnostic of a spec with `layer` on an input of `shape` and `dtype`."""
    with pytest.raises(SpecError) as info:
        load(spec_for(Case("bad", layer, {"x": (shape, dtype)})))
    (diag,) = info.value.diagnostics
    return diag


def keras_refuses(make, x=None):
    """Keras raises too: at construction, or when called on `x`."""
    with pytest.raises((ValueError, TypeError, IndexError)):
        layer = make()
        if x is not None:
            layer(x)


@pytest.mark.parametrize(
    "field,value", [("max_value", -1.0), ("negative_slope", -0.1), ("threshold", -2.0)]
)
def test_relu_arguments_must_not_be_negative(field, value):
    keras_refuses(lambda: keras.layers.ReLU(**{field: value}))
    d = error({"type": "ReLU", field: value})
    assert d.path == f"model.layers[0].{field}"
    assert ">= 0" in d.message + (d.hint or "")


def test_leaky_relu_slope_must_not_be_negative():
    keras_refuses(lambda: keras.layers.LeakyReLU(negative_slope=-0.3))
    d = error({"type": "LeakyReLU", "negative_slope": -0.3})
    assert d.path == "model.layers[0].negative_slope"


def test_leaky_relu_deprecated_alpha_is_refused():
    d = error({"type": "LeakyReLU", "alpha": 0.2})
    assert d.path == "model.layers[0].alpha"


def test_relu_bool_input_with_slope_and_threshold():
    x = np.ones((2, 3), bool)
    keras_refuses(lambda: keras.layers.ReLU(negative_slope=0.5, threshold=1.0), x)
    d = error({"type": "ReLU", "negative_slope": 0.5, "threshold": 1.0}, dtype="bool")
    assert d.path == "model.layers[0].inputs"
    assert "ReLU 'under_test': ReLU cannot take a bool input" in d.message
    assert d.received == "dtype=bool" and "int32" in d.hint


@pytest.mark.parametrize(
    "layer,make",
    [
        ({"type": "PReLU"}, lambda: keras.layers.PReLU()),
        ({"type": "Softmax"}, lambda: keras.layers.Softmax()),
    ],
)
def test_bool_inputs_refused_where_keras_fails(layer, make):
    keras_refuses(make, np.ones((2, 3), bool))
    d = error(layer, dtype="bool")
    assert "cannot take a bool input" in d.message and d.received == "dtype=bool"


def test_prelu_shared_axis_out_of_range():
    keras_refuses(lambda: keras.layers.PReLU(shared_axes=3), np.ones((2, 4, 3), "float32"))
    d = error({"type": "PReLU", "shared_axes": [1, 3]})
    assert d.path == "model.layers[0].shared_axes"
    assert "shared axis 3 is out of range for the rank-3 input (None, 4, 3)" in d.message
    assert "axes 1 to 2 can be shared" in d.message
    assert d.received == "shared_axes=[1, 3]"


@pytest.mark.parametrize("value", [0, -1, [1, -1]])
def test_prelu_shared_axes_count_from_one(value):
    """Keras accepts 0 and negative values but reads them one axis off (shared_axes=-1
    shares axis -2); refused here."""
    d = error({"type": "PReLU", "shared_axes": value})
    assert d.path.startswith("model.layers[0].shared_axes")
    assert "> 0" in d.message + (d.hint or "")


def test_prelu_needs_known_sizes_on_unshared_axes():
    with pytest.raises(ValueError, match="fully-defined"):
        keras.layers.PReLU()(keras.Input((None, 3)))
    d = error({"type": "PReLU", "inputs": "x"}, shape=(None, 3))
    assert d.path == "model.layers[0].inputs"
    assert "axis 1 of the input (None, None, 3) has a variable size" in d.message
    assert "Add 1 to shared_axes" in d.hint


@pytest.mark.parametrize(
    "axis,message",
    [
        (3, "axis 3 is out of range for a rank-3 input"),
        (-4, "axis -4 is out of range for a rank-3 input"),
        ([1, 5], "axis 5 is out of range for a rank-3 input"),
        ([1, -2], "axis 1 is named twice (as 1 and -2)"),
        ([2, 2], "axis 2 is named twice"),
    ],
)
def test_softmax_axis_errors_where_keras_raises(axis, message):
    keras_refuses(lambda: keras.layers.Softmax(axis=axis), np.ones((2, 4, 3), "float32"))
    d = error({"type": "Softmax", "axis": axis})
    assert d.path == "model.layers[0].axis"
    assert message in d.message and d.received == f"axis={axis}"
    assert "first axis of the model input's `shape` is axis 1" in d.hint


@pytest.mark.parametrize("axis", [0, -3, [0, 1]])
def test_softmax_over_the_batch_axis_is_refused(axis):
    """Keras allows it; a per-example softmax that depends on the batch is refused."""
    d = error({"type": "Softmax", "axis": axis})
    assert d.path == "model.layers[0].axis"
    assert "the batch axis 0 cannot be normalized over" in d.message


def test_softmax_empty_axis_list():
    keras_refuses(lambda: keras.layers.Softmax(axis=[]), np.ones((2, 3), "float32"))
    d = error({"type": "Softmax", "axis": []})
    assert d.path == "model.layers[0].axis"
    assert "the list of axes is empty" in d.message and "axis: -1" in d.hint
