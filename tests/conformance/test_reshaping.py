"""Conformance: reshaping layers (Flatten, Reshape) against Keras."""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
CASES = [
    Case("flatten", {"type": "Flatten"}, {"x": ((2, 3, 4), F)}),
    Case("reshape", {"type": "Reshape", "target_shape": [3, 4]}, {"x": ((12,), F)}),
    Case("reshape_infer", {"type": "Reshape", "target_shape": [-1, 2]}, {"x": ((3, 4), F)}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reshaping_layer_matches_keras(case):
    run_case(case)
