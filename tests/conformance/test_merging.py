"""Conformance: merge layers (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
Subtract) against Keras.

The element-wise cases cover 2 and 3 inputs, broadcasting, null (variable) sizes and the
dtype rules (ints stay ints except in Average, float16 is computed in float32, bools
keep Keras's meaning: Average or-s them before dividing). The Dot cases cover each
`axes` form, inputs of different ranks, `normalize`, a contraction over a null axis and
the integer dtypes (int8 · int8 accumulates into int32, as Keras's matmul does). The
error tests load a spec and assert the positioned diagnostic next to Keras refusing the
same layer.
"""

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel
from modelspec.errors import SpecError
from tests.conformance.harness import Case, run_case, spec_for

F = "float32"
INT = "int32"


def merge(kind, n, **args):
    return {"type": kind, "inputs": [f"x{i}" for i in range(n)], **args}


def two(shape0, shape1, dtype0=F, dtype1=None):
    """Input types of a two-input case."""
    return {"x0": (shape0, dtype0), "x1": (shape1, dtype1 or dtype0)}


def three(shape, dtype=F):
    return {f"x{i}": (shape, dtype) for i in range(3)}


ADD_CONCAT_CASES = [
    Case("add2", merge("Add", 2), {"x0": ((4,), F), "x1": ((4,), F)}),
    Case("add3", merge("Add", 3), {"x0": ((2, 3), F), "x1": ((2, 3), F), "x2": ((2, 3), F)}),
    Case("add_broadcast", merge("Add", 2), {"x0": ((1, 4), F), "x1": ((3, 4), F)}),
    Case(
        "add_broadcast3", merge("Add", 3), {"x0": ((3, 1), F), "x1": ((1, 4), F), "x2": ((3, 4), F)}
    ),
    Case("add_int", merge("Add", 2), {"x0": ((3,), "int32"), "x1": ((3,), "int32")}),
    Case("add_float16", merge("Add", 2), {"x0": ((3,), "float16"), "x1": ((3,), "float16")}),
    Case("add_int_float", merge("Add", 2), {"x0": ((3,), "int32"), "x1": ((3,), F)}),
    Case("multiply2", merge("Multiply", 2), {"x0": ((5,), F), "x1": ((5,), F)}),
    Case(
        "multiply3_broadcast",
        merge("Multiply", 3),
        {"x0": ((2, 1, 3), F), "x1": ((2, 4, 3), F), "x2": ((1, 4, 3), F)},
    ),
    Case(
        "multiply_variable_steps",
        merge("Multiply", 2),
        {"x0": ((None, 3), F), "x1": ((None, 3), F)},
    ),
    Case("concat_last", merge("Concatenate", 2), {"x0": ((3,), F), "x1": ((5,), F)}),
    Case(
        "concat_axis1",
        merge("Concatenate", 3, axis=1),
        {"x0": ((2, 3), F), "x1": ((4, 3), F), "x2": ((1, 3), F)},
    ),
    Case(
        "concat_axis_neg2",
        merge("Concatenate", 2, axis=-2),
        {"x0": ((2, 3, 4), F), "x1": ((2, 1, 4), F)},
    ),
    Case("concat_int", merge("Concatenate", 2), {"x0": ((2,), "int32"), "x1": ((3,), "int32")}),
    # A variable-length axis that is not the concatenation axis. (Concatenating *along* a
    # variable axis is not expressible here: the harness maps every unknown output
    # dimension to 5, while the real output is the sum of the input lengths.)
    Case(
        "concat_variable_steps",
        merge("Concatenate", 2),
        {"x0": ((None, 2), F), "x1": ((None, 3), F)},
    ),
    Case("add_broadcast_variable", merge("Add", 2), {"x0": ((None, 3), F), "x1": ((1, 3), F)}),
    Case("subtract2", merge("Subtract", 2), {"x0": ((4,), F), "x1": ((4,), F)}),
    Case("subtract_rank3", merge("Subtract", 2), {"x0": ((2, 3), F), "x1": ((2, 3), F)}),
    Case("subtract_broadcast", merge("Subtract", 2), {"x0": ((3, 1), F), "x1": ((1, 4), F)}),
    Case("subtract_int", merge("Subtract", 2), {"x0": ((3,), "int32"), "x1": ((3,), "int32")}),
    Case("subtract_int_float", merge("Subtract", 2), {"x0": ((3,), "int32"), "x1": ((3,), F)}),
    Case(
        "subtract_float16", merge("Subtract", 2), {"x0": ((3,), "float16"), "x1": ((3,), "float16")}
    ),
    Case(
        "subtract_variable_steps",
        merge("Subtract", 2),
        {"x0": ((None, 3), F), "x1": ((None, 3), F)},
    ),
]

ELEMENTWISE_CASES = [
    Case("average2", merge("Average", 2), two((4,), (4,))),
    Case("average3", merge("Average", 3), three((2, 3))),
    Case("average_broadcast", merge("Average", 2), two((3, 1), (1, 4))),
    Case("average_int", merge("Average", 2), two((3,), (3,), INT)),
    Case("average_int8", merge("Average", 3), three((4,), "int8")),
    Case("average_bool_or", merge("Average", 3), three((5,), "bool")),
    Case("average_float16", merge("Average", 2), two((3,), (3,), "float16")),
    Case("average_int_float", merge("Average", 2), two((3,), (3,), INT, F)),
    Case("average_variable_steps", merge("Average", 2), two((None, 3), (None, 3))),
    Case("maximum2", merge("Maximum", 2), two((4,), (4,))),
    Case(
        "maximum3_broadcast",
        merge("Maximum", 3),
        {"x0": ((2, 1, 3), F), "x1": ((2, 4, 3), F), "x2": ((1, 4, 3), F)},
    ),
    Case("maximum_int", merge("Maximum", 2), two((3, 2), (3, 2), INT)),
    Case("maximum_uint8", merge("Maximum", 2), two((3,), (3,), "uint8")),
    Case("maximum_bool", merge("Maximum", 2), two((4,), (4,), "bool")),
    Case("maximum_float16", merge("Maximum", 2), two((3,), (3,), "float16")),
    Case("maximum_int_float", merge("Maximum", 2), two((3,), (3,), INT, F)),
    Case("maximum_variable_steps", merge("Maximum", 2), two((None, 3), (1, 3))),
    Case("minimum2", merge("Minimum", 2), two((4,), (4,))),
    Case("minimum3", merge("Minimum", 3), three((2, 3))),
    Case("minimum_broadcast", merge("Minimum", 2), two((1, 4), (3, 1))),
    Case("minimum_int", merge("Minimum", 2), two((3,), (3,), INT)),
    Case("minimum_int8", merge("Minimum", 2), two((3,), (3,), "int8")),
    Case("minimum_float16_float", merge("Minimum", 2), two((3,), (3,), "float16", F)),
    Case("minimum_variable_steps", merge("Minimum", 2), two((None, 2), (None, 2))),
]

DOT_CASES = [
    Case("dot_vectors", merge("Dot", 2, axes=1), two((4,), (4,))),
    Case("dot_vectors_negative", merge("Dot", 2, axes=-1), two((4,), (4,))),
    Case("dot_rank3_last", merge("Dot", 2, axes=2), two((5, 3), (4, 3))),
    Case("dot_rank3_first", merge("Dot", 2, axes=1), two((3, 5), (3, 4))),
    Case("dot_axes_pair", merge("Dot", 2, axes=[1, 2]), two((3, 5), (4, 3))),
    Case("dot_vector_matrix", merge("Dot", 2, axes=[1, 2]), two((3,), (5, 3))),
    Case("dot_matrix_vector", merge("Dot", 2, axes=[2, 1]), two((4, 3), (3,))),
    Case("dot_rank4_negative_pair", merge("Dot", 2, axes=[-1, -2]), two((2, 4, 3), (2, 3, 6))),
    Case("dot_normalize", merge("Dot", 2, axes=2, normalize=True), two((4, 3), (5, 3))),
    Case("dot_normalize_pair", merge("Dot", 2, axes=[1, 1], normalize=True), two((4, 3), (4, 2))),
    Case("dot_normalize_vectors", merge("Dot", 2, axes=1, normalize=True), two((6,), (6,))),
    Case(
        "dot_normalize_float16",
        merge("Dot", 2, axes=-1, normalize=True),
        two((3, 4), (2, 4), "float16"),
    ),
    Case("dot_int", merge("Dot", 2, axes=1), two((4,), (4,), INT)),
    Case("dot_int8_accumulates_int32", merge("Dot", 2, axes=2), two((3, 4), (2, 4), "int8")),
    Case("dot_int_float", merge("Dot", 2, axes=1), two((4, 2), (4, 3), INT, F)),
    Case("dot_variable_rows", merge("Dot", 2, axes=2), two((None, 3), (None, 3))),
    Case("dot_over_variable_axis", merge("Dot", 2, axes=1), two((None, 3), (None, 2))),
]

CASES = ADD_CONCAT_CASES + ELEMENTWISE_CASES + DOT_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_merging_layer_matches_keras(case):
    run_case(case)


@pytest.mark.parametrize("n", [1, 3])
def test_subtract_takes_exactly_two_inputs_like_keras(n):
    """Keras raises "A `Subtract` layer should be called on exactly 2 inputs"; here the
    spec is refused at `inputs`, before anything is built."""
    shapes = {f"x{i}": ((4,), F) for i in range(n)}
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        keras.layers.Subtract()([np.zeros((1, 4), "float32")] * n)
    with pytest.raises(SpecError) as info:
        load(spec_for(Case("bad", merge("Subtract", n), shapes)))
    (diag,) = info.value.diagnostics
    assert diag.path == "model.layers[0].inputs"
    assert "Subtract takes exactly 2 inputs" in diag.message


def diagnostic(layer: dict, inputs: dict):
    """The one diagnostic of loading a spec with `layer` on `inputs`."""
    with pytest.raises(SpecError) as info:
        load(spec_for(Case("bad", layer, inputs)))
    (diag,) = info.value.diagnostics
    return diag


def keras_refuses(layer: dict, inputs: dict) -> None:
    """Keras raises for the same layer on the same inputs: when a model is built (symbolic
    inputs) or when it is called on data."""
    cls = getattr(keras.layers, layer["type"])
    args = {k: v for k, v in layer.items() if k not in ("type", "inputs")}
    symbolic = [keras.Input(s, dtype=d) for s, d in inputs.values()]
    data = [np.ones((2, *(5 if n is None else n for n in s)), d) for s, d in inputs.values()]
    try:
        cls(**args)(symbolic)
        cls(**args)(data)
    except (ValueError, TypeError, IndexError):
        return
    pytest.fail(f"Keras accepted {layer} on {inputs}")


@pytest.mark.parametrize(
    ("args", "inputs", "field", "text"),
    [
        ({"axes": 0}, two((4,), (4,)), "axes", "batch axis 0"),
        ({"axes": [1, -3]}, two((4, 3), (4, 3)), "axes", "the second input is its batch axis 0"),
        ({"axes": 3}, two((4, 3), (4, 3)), "axes", "axis 3 is out of range for the first input"),
        ({"axes": [1]}, two((4,), (4,)), "axes", "needs 2 value(s)"),
        ({"axes": [1, 1, 1]}, two((4,), (4,)), "axes", "needs 2 value(s)"),
        ({"axes": 2}, two((4, 3), (4, 2)), "inputs", "axis 2 of the first input is 3, axis 2"),
        ({"axes": 1}, two((None, 3), (4, 3)), "inputs", "first input is null, axis 1 of the"),
        ({"axes": 1, "normalize": True}, two((4,), (4,), INT, F), "normalize", "refuses int32"),
        ({"axes": 1}, two((), ()), "inputs", "expects input of rank >= 2"),
    ],
)
def test_dot_refuses_what_keras_refuses(args, inputs, field, text):
    layer = merge("Dot", 2, **args)
    keras_refuses(layer, inputs)
    d = diagnostic(layer, inputs)
    assert d.path == f"model.layers[0].{field}"
    assert text in d.message and "Dot" in d.message


def test_dot_needs_axes_like_keras():
    with pytest.raises(TypeError, match="axes"):
        keras.layers.Dot()
    d = diagnostic(merge("Dot", 2), two((4,), (4,)))
    assert d.path == "model.layers[0].axes" and "missing required argument 'axes'" in d.message


@pytest.mark.parametrize("n", [1, 3])
def test_dot_takes_exactly_two_inputs_like_keras(n):
    inputs = {f"x{i}": ((4,), F) for i in range(n)}
    keras_refuses({"type": "Dot", "axes": 1}, inputs)
    d = diagnostic(merge("Dot", n, axes=1), inputs)
    assert d.path == "model.layers[0].inputs" and "Dot takes exactly 2 inputs" in d.message


@pytest.mark.parametrize("kind", ["Average", "Maximum", "Minimum"])
def test_elementwise_merge_incompatible_shapes(kind):
    inputs = two((4, 3), (5, 3))
    keras_refuses({"type": kind}, inputs)
    d = diagnostic(merge(kind, 2), inputs)
    assert d.path == "model.layers[0].inputs"
    assert f"{kind} inputs have incompatible shapes (axis 1: 4 vs 5)" in d.message


@pytest.mark.parametrize("kind", ["Average", "Maximum", "Minimum"])
def test_elementwise_merge_needs_two_inputs(kind):
    """Like Add (Keras would also take a one-element list, which merges nothing)."""
    d = diagnostic(merge(kind, 1), {"x0": ((4,), F)})
    assert d.path == "model.layers[0].inputs" and "merges two or more inputs" in d.message


def test_dot_normalize_keeps_zero_vectors_zero_like_keras():
    """Keras caps 1/norm at 1/epsilon, so an all-zero sample gives 0, not NaN."""
    case = Case("zeros", merge("Dot", 2, axes=1, normalize=True), two((3,), (3,)))
    model = CompiledModel(load(spec_for(case)), seed=0)
    x = {"x0": np.zeros((2, 3), F), "x1": np.ones((2, 3), F)}
    ours = np.asarray(model({k: jnp.asarray(v) for k, v in x.items()})["under_test"])
    ref = np.asarray(keras.layers.Dot(axes=1, normalize=True)([x["x0"], x["x1"]]))
    np.testing.assert_array_equal(ours, ref)
    assert ours.shape == (2, 1) and not np.any(ours)
