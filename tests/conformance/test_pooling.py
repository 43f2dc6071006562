"""Conformance: pooling layers (MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D/2D)
against Keras (channels-last).

Odd sizes with `same` padding check where XLA puts the extra element and that average
pooling counts only real elements (Keras's rule); integer inputs check the dtype rules.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"


def pool(id_: str, layer_type: str, shape: tuple, dtype: str = F, **layer) -> Case:
    """A pooling case on one input `x` of `shape` (without the batch axis) and `dtype`."""
    return Case(id_, {"type": layer_type, **layer}, {"x": (shape, dtype)})


CASES = [
    pool("maxpool_valid", "MaxPooling2D", (6, 6, 3), pool_size=2),
    pool("maxpool_valid_odd", "MaxPooling2D", (7, 8, 2), pool_size=3, strides=2),
    pool("maxpool_same_odd", "MaxPooling2D", (7, 5, 2), pool_size=[3, 2], padding="same"),
    pool("maxpool_same_stride1", "MaxPooling2D", (5, 5, 2), pool_size=3, strides=1, padding="same"),
    pool("maxpool_int", "MaxPooling2D", (4, 5, 1), dtype="int32", pool_size=2),
    pool("avgpool_valid", "AveragePooling2D", (6, 6, 3), pool_size=2),
    pool("avgpool_valid_odd", "AveragePooling2D", (7, 6, 2), pool_size=3, strides=[2, 1]),
    pool("avgpool_same_odd", "AveragePooling2D", (7, 8, 2), pool_size=3, strides=2, padding="same"),
    pool(
        "avgpool_same_stride1",
        "AveragePooling2D",
        (5, 4, 2),
        pool_size=[2, 3],
        strides=1,
        padding="same",
    ),
    pool("avgpool_int", "AveragePooling2D", (5, 5, 1), dtype="int32", pool_size=2, padding="same"),
    pool("gap1d", "GlobalAveragePooling1D", (7, 3)),
    pool("gap1d_keepdims", "GlobalAveragePooling1D", (None, 3), keepdims=True),
    pool("gap2d", "GlobalAveragePooling2D", (5, 4, 3)),
    pool("gap2d_keepdims", "GlobalAveragePooling2D", (3, 6, 2), keepdims=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pooling_layer_matches_keras(case):
    run_case(case)
