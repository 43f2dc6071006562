"""Conformance: pooling layers (MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D)
against Keras (channels-last).

Odd sizes with `same` padding check where XLA puts the extra element and that average
pooling counts only real elements (Keras's rule); integer inputs check the dtype rules.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
CASES = [
    Case("maxpool_valid", {"type": "MaxPooling2D", "pool_size": 2}, {"x": ((6, 6, 3), F)}),
    Case(
        "maxpool_valid_odd",
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 2},
        {"x": ((7, 8, 2), F)},
    ),
    Case(
        "maxpool_same_odd",
        {"type": "MaxPooling2D", "pool_size": [3, 2], "padding": "same"},
        {"x": ((7, 5, 2), F)},
    ),
    Case(
        "maxpool_same_stride1",
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 1, "padding": "same"},
        {"x": ((5, 5, 2), F)},
    ),
    Case("maxpool_int", {"type": "MaxPooling2D", "pool_size": 2}, {"x": ((4, 5, 1), "int32")}),
    Case("avgpool_valid", {"type": "AveragePooling2D", "pool_size": 2}, {"x": ((6, 6, 3), F)}),
    Case(
        "avgpool_valid_odd",
        {"type": "AveragePooling2D", "pool_size": 3, "strides": [2, 1]},
        {"x": ((7, 6, 2), F)},
    ),
    Case(
        "avgpool_same_odd",
        {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
        {"x": ((7, 8, 2), F)},
    ),
    Case(
        "avgpool_same_stride1",
        {"type": "AveragePooling2D", "pool_size": [2, 3], "strides": 1, "padding": "same"},
        {"x": ((5, 4, 2), F)},
    ),
    Case(
        "avgpool_int",
        {"type": "AveragePooling2D", "pool_size": 2, "padding": "same"},
        {"x": ((5, 5, 1), "int32")},
    ),
    Case("gap1d", {"type": "GlobalAveragePooling1D"}, {"x": ((7, 3), F)}),
    Case(
        "gap1d_keepdims",
        {"type": "GlobalAveragePooling1D", "keepdims": True},
        {"x": ((None, 3), F)},
    ),
    Case("gap2d", {"type": "GlobalAveragePooling2D"}, {"x": ((5, 4, 3), F)}),
    Case(
        "gap2d_keepdims",
        {"type": "GlobalAveragePooling2D", "keepdims": True},
        {"x": ((3, 6, 2), F)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pooling_layer_matches_keras(case):
    run_case(case)
