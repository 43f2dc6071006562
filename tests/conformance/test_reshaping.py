"""Conformance: reshaping layers (Flatten, Reshape, Permute, RepeatVector) against Keras.

Permute and RepeatVector also check Keras's dtype policy: float16/bfloat16 come out
float32, integer and bool inputs pass through unchanged.
"""

import keras
import numpy as np
import pytest

from tests.conformance.diagnostics import written
from tests.conformance.harness import Case, run_case

F = "float32"


def one(id_: str, layer: dict, shape: tuple, dtype: str = F, **kw) -> Case:
    """A case on one input `x` of `shape` (without the batch axis) and `dtype`."""
    return Case(id_, layer, {"x": (shape, dtype)}, **kw)


CASES = [
    one("flatten", {"type": "Flatten"}, (3, 4)),
    one("reshape", {"type": "Reshape", "target_shape": [3, 4]}, (12,)),
    one("reshape_infer", {"type": "Reshape", "target_shape": [-1, 2]}, (3, 4)),
    one("flatten_float16", {"type": "Flatten"}, (3, 4), "float16"),
    one("flatten_int", {"type": "Flatten"}, (3, 4), "int32"),
    one("reshape_bfloat16", {"type": "Reshape", "target_shape": [4, 3]}, (12,), "bfloat16"),
    one("permute_swap", {"type": "Permute", "dims": [2, 1]}, (4, 6)),
    one("permute_rank4_cycle", {"type": "Permute", "dims": [3, 1, 2]}, (2, 3, 4)),
    one("permute_identity", {"type": "Permute", "dims": [1, 2, 3]}, (2, 3, 4)),
    one("permute_variable_steps", {"type": "Permute", "dims": [2, 1]}, (None, 3)),
    one("permute_int", {"type": "Permute", "dims": [2, 3, 1]}, (2, 3, 4), "int32"),
    one("permute_float16", {"type": "Permute", "dims": [2, 1]}, (3, 5), "float16"),
    one("permute_rank2", {"type": "Permute", "dims": [1]}, (5,)),
    one("repeat_vector", {"type": "RepeatVector", "n": 3}, (4,)),
    one("repeat_vector_once", {"type": "RepeatVector", "n": 1}, (6,)),
    one("repeat_vector_int", {"type": "RepeatVector", "n": 4}, (2,), "int32"),
    one("repeat_vector_bfloat16", {"type": "RepeatVector", "n": 2}, (3,), "bfloat16"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reshaping_layer_matches_keras(case):
    run_case(case)


def test_permute_dims_must_be_a_permutation_like_keras(tmp_path):
    with pytest.raises(ValueError, match="consecutive and start from 1"):
        keras.layers.Permute((1, 3))
    diag = written(tmp_path, "type: Permute\ndims: [1, 3]", [2, 4])
    assert (diag.path, diag.line) == ("model.layers[0].dims", 10)
    assert "dims must contain each of 1..2 exactly once" in diag.message
    assert diag.received == "dims=[1, 3]"


def test_permute_needs_one_entry_per_axis(tmp_path):
    diag = written(tmp_path, "type: Permute\ndims: [2, 1]", [2, 4, 4])
    assert diag.path == "model.layers[0]"
    assert "expects rank-3 input" in diag.message and "got rank 4" in diag.message


def test_repeat_vector_needs_rank_2_and_positive_n(tmp_path):
    with pytest.raises(ValueError, match="expected ndim=2"):
        keras.layers.RepeatVector(2)(np.zeros((1, 2, 3), "float32"))
    diag = written(tmp_path, "type: RepeatVector\nn: 2", [2, 4])
    assert "expects rank-2 input (batch, features), got rank 3" in diag.message
    with pytest.raises(ValueError, match="positive integer"):
        keras.layers.RepeatVector(0)
    diag = written(tmp_path, "type: RepeatVector\nn: 0", [4])
    assert (diag.path, diag.line) == ("model.layers[0].n", 10)
    assert "must be > 0" in diag.message
