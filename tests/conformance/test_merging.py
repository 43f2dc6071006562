"""Conformance: merge layers (Add, Concatenate, Multiply, Subtract) against Keras."""

import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from tests.conformance.harness import Case, run_case, spec_for

F = "float32"


def merge(kind, n, **args):
    return {"type": kind, "inputs": [f"x{i}" for i in range(n)], **args}


CASES = [
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
