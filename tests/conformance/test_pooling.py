"""Conformance: pooling layers against Keras (channels-last): MaxPooling1D/2D/3D,
AveragePooling1D/2D/3D, GlobalMaxPooling1D/2D/3D, GlobalAveragePooling1D/2D/3D.

Odd sizes with `same` padding check where XLA puts the extra element and that average
pooling counts only real elements (Keras's rule); integer, bool and float16 inputs check
the dtype rules (max keeps integers and bools, averages are float32); null sizes check
variable-length axes (a null axis that is pooled keeps stride 1 with `same` padding, or
a window of 1: the harness feeds 5 for every null size and expects 5 back, while a
strided axis would shrink). The error tests load a spec and assert the positioned diagnostic,
next to Keras refusing the same arguments.
"""

import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from tests.conformance.harness import Case, run_case, spec_for

F = "float32"


def pool(id_: str, layer_type: str, shape: tuple, dtype: str = F, **layer) -> Case:
    """A pooling case on one input `x` of `shape` (without the batch axis) and `dtype`."""
    return Case(id_, {"type": layer_type, **layer}, {"x": (shape, dtype)})


WINDOW_CASES = [
    # MaxPooling1D
    pool("maxpool1d_default", "MaxPooling1D", (7, 3)),
    pool("maxpool1d_same_odd", "MaxPooling1D", (9, 2), pool_size=3, strides=2, padding="same"),
    pool(
        "maxpool1d_same_even_window",
        "MaxPooling1D",
        (5, 2),
        pool_size=[4],
        strides=1,
        padding="same",
    ),
    pool("maxpool1d_valid_strides", "MaxPooling1D", (10, 2), pool_size=3, strides=[2]),
    pool(
        "maxpool1d_variable_steps",
        "MaxPooling1D",
        (None, 3),
        pool_size=2,
        strides=1,
        padding="same",
    ),
    pool("maxpool1d_int", "MaxPooling1D", (6, 2), dtype="int32", pool_size=3, padding="same"),
    pool("maxpool1d_bool", "MaxPooling1D", (6, 2), dtype="bool", pool_size=2),
    pool("maxpool1d_float16", "MaxPooling1D", (6, 2), dtype="float16", pool_size=2),
    # MaxPooling2D
    pool("maxpool_valid", "MaxPooling2D", (6, 6, 3), pool_size=2),
    pool("maxpool_default", "MaxPooling2D", (5, 4, 2)),
    pool("maxpool_valid_odd", "MaxPooling2D", (7, 8, 2), pool_size=3, strides=2),
    pool("maxpool_same_odd", "MaxPooling2D", (7, 5, 2), pool_size=[3, 2], padding="same"),
    pool("maxpool_same_stride1", "MaxPooling2D", (5, 5, 2), pool_size=3, strides=1, padding="same"),
    pool("maxpool_int", "MaxPooling2D", (4, 5, 1), dtype="int32", pool_size=2),
    pool("maxpool_int8", "MaxPooling2D", (4, 4, 1), dtype="int8", pool_size=2, padding="same"),
    # MaxPooling3D
    pool("maxpool3d_default", "MaxPooling3D", (4, 5, 4, 2)),
    pool("maxpool3d_same_odd", "MaxPooling3D", (5, 4, 3, 2), pool_size=[3, 2, 2], padding="same"),
    pool("maxpool3d_valid_strides", "MaxPooling3D", (6, 5, 7, 1), pool_size=3, strides=[2, 1, 2]),
    pool(
        "maxpool3d_variable",
        "MaxPooling3D",
        (None, 4, None, 2),
        pool_size=2,
        strides=[1, 2, 1],
        padding="same",
    ),
    pool("maxpool3d_int", "MaxPooling3D", (4, 4, 4, 1), dtype="int32", pool_size=2),
    # AveragePooling1D
    pool("avgpool1d_valid", "AveragePooling1D", (8, 3), pool_size=2),
    pool("avgpool1d_same_odd", "AveragePooling1D", (7, 2), pool_size=3, strides=2, padding="same"),
    pool(
        "avgpool1d_same_even_window",
        "AveragePooling1D",
        (6, 2),
        pool_size=4,
        strides=1,
        padding="same",
    ),
    pool("avgpool1d_valid_strides", "AveragePooling1D", (9, 2), pool_size=[3], strides=2),
    pool(
        "avgpool1d_variable_steps",
        "AveragePooling1D",
        (None, 2),
        pool_size=3,
        strides=1,
        padding="same",
    ),
    pool("avgpool1d_int", "AveragePooling1D", (6, 2), dtype="int32", pool_size=2),
    pool(
        "avgpool1d_float16",
        "AveragePooling1D",
        (6, 2),
        dtype="float16",
        pool_size=3,
        padding="same",
    ),
    # AveragePooling2D
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
    # AveragePooling3D
    pool("avgpool3d_valid", "AveragePooling3D", (4, 4, 6, 2), pool_size=2),
    pool(
        "avgpool3d_same_odd",
        "AveragePooling3D",
        (5, 3, 4, 2),
        pool_size=3,
        strides=2,
        padding="same",
    ),
    pool(
        "avgpool3d_same_stride1",
        "AveragePooling3D",
        (4, 5, 3, 1),
        pool_size=[2, 3, 1],
        strides=1,
        padding="same",
    ),
    pool("avgpool3d_variable", "AveragePooling3D", (None, 4, 4, 2), pool_size=[1, 2, 2]),
    pool(
        "avgpool3d_int",
        "AveragePooling3D",
        (3, 4, 4, 1),
        dtype="uint8",
        pool_size=2,
        padding="same",
    ),
]

GLOBAL_CASES = [
    pool("gmp1d", "GlobalMaxPooling1D", (7, 3)),
    pool("gmp1d_keepdims", "GlobalMaxPooling1D", (7, 3), keepdims=True),
    pool("gmp1d_variable_steps", "GlobalMaxPooling1D", (None, 4)),
    pool("gmp1d_int", "GlobalMaxPooling1D", (6, 2), dtype="int32"),
    pool("gmp1d_bool", "GlobalMaxPooling1D", (6, 2), dtype="bool", keepdims=True),
    pool("gmp2d", "GlobalMaxPooling2D", (5, 4, 3)),
    pool("gmp2d_keepdims", "GlobalMaxPooling2D", (3, 6, 2), keepdims=True),
    pool("gmp2d_variable", "GlobalMaxPooling2D", (None, None, 2)),
    pool("gmp2d_int8", "GlobalMaxPooling2D", (4, 4, 2), dtype="int8"),
    pool("gmp2d_float16", "GlobalMaxPooling2D", (4, 3, 2), dtype="float16"),
    pool("gmp3d", "GlobalMaxPooling3D", (3, 4, 5, 2)),
    pool("gmp3d_uint8", "GlobalMaxPooling3D", (2, 3, 3, 2), dtype="uint8"),
    pool("gmp3d_keepdims", "GlobalMaxPooling3D", (3, 4, 2, 3), keepdims=True),
    pool("gmp3d_int", "GlobalMaxPooling3D", (2, 3, 4, 2), dtype="int32", keepdims=True),
    pool("gap1d", "GlobalAveragePooling1D", (7, 3)),
    pool("gap1d_keepdims", "GlobalAveragePooling1D", (None, 3), keepdims=True),
    pool("gap1d_int", "GlobalAveragePooling1D", (6, 2), dtype="int32"),
    pool("gap2d", "GlobalAveragePooling2D", (5, 4, 3)),
    pool("gap2d_keepdims", "GlobalAveragePooling2D", (3, 6, 2), keepdims=True),
    pool("gap2d_variable_float16", "GlobalAveragePooling2D", (None, 4, 2), dtype="float16"),
    pool("gap2d_uint8", "GlobalAveragePooling2D", (4, 4, 2), dtype="uint8"),
    pool("gap3d", "GlobalAveragePooling3D", (3, 4, 5, 2)),
    pool("gap3d_keepdims", "GlobalAveragePooling3D", (3, 4, 2, 3), keepdims=True),
    pool("gap3d_variable", "GlobalAveragePooling3D", (None, 3, None, 2)),
    pool("gap3d_int", "GlobalAveragePooling3D", (2, 3, 4, 2), dtype="int32", keepdims=True),
]

CASES = WINDOW_CASES + GLOBAL_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pooling_layer_matches_keras(case):
    run_case(case)


def diagnostic(layer: dict, shape: tuple, dtype: str = F):
    """The one diagnostic of loading `layer` on an input `x` of `shape` and `dtype`."""
    with pytest.raises(SpecError) as info:
        load(spec_for(pool("bad", layer.pop("type"), shape, dtype, **layer)))
    (diag,) = info.value.diagnostics
    return diag


def keras_refuses(layer: dict, shape: tuple, dtype: str = F) -> None:
    """Keras raises for the same layer arguments on the same input, when a model is built
    (a symbolic input) or when it is called on data."""
    args = {k: v for k, v in layer.items() if k not in ("type", "inputs")}
    try:
        getattr(keras.layers, layer["type"])(**args)(keras.Input(shape, dtype=dtype))
        getattr(keras.layers, layer["type"])(**args)(np.zeros((1, *shape), dtype))
    except (ValueError, TypeError):
        return
    pytest.fail(f"Keras accepted {layer} on {shape} {dtype}")


@pytest.mark.parametrize(
    ("layer", "shape", "field", "text"),
    [
        (
            {"type": "MaxPooling3D", "pool_size": [2, 2]},
            (4, 4, 4, 1),
            "pool_size",
            "needs 3 value(s)",
        ),
        (
            {"type": "AveragePooling1D", "pool_size": 2, "strides": [1, 1]},
            (6, 2),
            "strides",
            "needs 1",
        ),
        (
            {"type": "AveragePooling3D", "pool_size": 3},
            (4, 2, 4, 1),
            "pool_size",
            "smaller than pool_size [3, 3, 3]",
        ),
        (
            {"type": "MaxPooling1D", "pool_size": 5},
            (4, 2),
            "pool_size",
            "smaller than pool_size [5]",
        ),
        (
            {"type": "AveragePooling1D", "pool_size": 2},
            (6, 2),
            "inputs",
            "cannot average a bool input",
        ),
    ],
)
def test_window_pooling_refuses_what_keras_refuses(layer, shape, field, text):
    dtype = "bool" if "bool" in text else F
    keras_refuses(layer, shape, dtype)
    d = diagnostic(dict(layer), shape, dtype)
    assert d.path == f"model.layers[0].{field}"
    assert text in d.message and layer["type"] in d.message


@pytest.mark.parametrize(
    ("layer_type", "shape", "want"),
    [
        ("MaxPooling3D", (4, 4, 2), "expects rank-5 input (batch, depth, height, width, channels)"),
        ("AveragePooling1D", (4, 4, 2), "expects rank-3 input (batch, steps, channels)"),
        (
            "GlobalMaxPooling3D",
            (4, 2),
            "expects rank-5 input (batch, depth, height, width, channels)",
        ),
        ("GlobalMaxPooling1D", (4, 4, 2), "expects rank-3 input (batch, steps, channels)"),
        ("GlobalAveragePooling3D", (4, 4, 2), "got rank 4"),
    ],
)
def test_pooling_wrong_input_rank(layer_type, shape, want):
    layer = {"type": layer_type, "inputs": "x"}
    if layer_type.startswith("AveragePooling"):
        layer["pool_size"] = 2
    keras_refuses(layer, shape)
    d = diagnostic(layer, shape)
    assert d.path == "model.layers[0].inputs"
    assert want in d.message


def test_average_pooling_needs_pool_size_like_keras():
    """Keras's AveragePooling layers have no default pool_size (max pooling's is 2)."""
    with pytest.raises(TypeError, match="pool_size"):
        keras.layers.AveragePooling3D()
    d = diagnostic({"type": "AveragePooling3D"}, (4, 4, 4, 1))
    assert d.path == "model.layers[0].pool_size" and "missing required argument" in d.message


@pytest.mark.parametrize(
    ("layer", "shape", "field"),
    [
        ({"type": "GlobalMaxPooling2D", "data_format": "channels_first"}, (4, 4, 1), "data_format"),
        ({"type": "MaxPooling1D", "data_format": "channels_last"}, (4, 1), "data_format"),
        ({"type": "MaxPooling1D", "padding": "causal"}, (4, 1), "padding"),
        ({"type": "AveragePooling3D", "pool_size": 0}, (4, 4, 4, 1), "pool_size"),
        ({"type": "GlobalAveragePooling3D", "keepdims": "maybe"}, (4, 4, 4, 1), "keepdims"),
    ],
)
def test_pooling_argument_errors_are_positioned(layer, shape, field):
    """Channels-last only: `data_format` is not a field, even with the default value."""
    d = diagnostic(dict(layer), shape)
    assert d.path == f"model.layers[0].{field}"
