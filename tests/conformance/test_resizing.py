"""Conformance: spatial resizing layers (Cropping1D/2D/3D, ZeroPadding1D/2D/3D,
UpSampling1D/2D/3D) against Keras (channels-last).

The cases cover every written form of `cropping` / `padding` (int, per-axis ints, pairs,
mixed), asymmetric and zero edges (a zero end crop is Keras's `[a:]` slice), variable
(None) spatial axes, and Keras's dtype policy (float16 -> float32; int/bool kept).
UpSampling2D runs every interpolation mode Keras's JAX backend has, with odd sizes and
unequal factors; integer inputs check Keras's round-and-saturate cast back to the input
dtype (int8 values near 127 overshoot under bicubic/lanczos and must clip).
"""

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from tests.conformance.diagnostics import assert_on_layer_field, keras_refuses, written
from tests.conformance.harness import Case, keras_layer, run_case, spec_for

F = "float32"


def one(id_: str, layer_type: str, shape: tuple, dtype: str = F, int_high=10, **layer) -> Case:
    """A case on one input `x` of `shape` (without the batch axis) and `dtype`."""
    return Case(id_, {"type": layer_type, **layer}, {"x": (shape, dtype)}, int_high=int_high)


UP2 = "UpSampling2D"
CASES = [
    # Cropping
    one("crop1d_default", "Cropping1D", (6, 3)),
    one("crop1d_pair", "Cropping1D", (7, 2), cropping=[2, 0]),
    one("crop1d_zero", "Cropping1D", (4, 2), cropping=0),
    one("crop1d_variable_features", "Cropping1D", (6, None), cropping=[1, 2]),
    one("crop1d_int", "Cropping1D", (5, 2), "int32", cropping=[0, 3]),
    one("crop2d_default", "Cropping2D", (4, 5, 2)),
    one("crop2d_int_arg", "Cropping2D", (6, 7, 2), cropping=2),
    one("crop2d_symmetric_pairs", "Cropping2D", (6, 7, 3), cropping=[1, 2]),
    one("crop2d_full", "Cropping2D", (8, 9, 1), cropping=[[1, 2], [3, 0]]),
    one("crop2d_mixed", "Cropping2D", (6, 9, 2), cropping=[[0, 2], 1]),
    one("crop2d_variable", "Cropping2D", (None, 8, 2), cropping=[[0, 0], [2, 3]]),
    one("crop2d_float16", "Cropping2D", (5, 5, 2), "float16", cropping=1),
    one("crop2d_bool", "Cropping2D", (4, 4, 1), "bool", cropping=[[1, 0], [0, 1]]),
    one("crop3d_default", "Cropping3D", (4, 5, 6, 2)),
    one("crop3d_pairs", "Cropping3D", (5, 6, 7, 1), cropping=[[0, 1], [2, 1], [1, 0]]),
    one("crop3d_ints", "Cropping3D", (5, 6, 7, 2), cropping=[1, 0, 2]),
    one("crop3d_variable_int", "Cropping3D", (4, None, 6, 2), "int32", cropping=[1, 0, [1, 2]]),
    # Zero padding
    one("pad1d_default", "ZeroPadding1D", (4, 3)),
    one("pad1d_pair", "ZeroPadding1D", (5, 2), padding=[0, 3]),
    one("pad1d_variable_int", "ZeroPadding1D", (5, None), "int32", padding=[2, 1]),
    one("pad2d_default", "ZeroPadding2D", (3, 4, 2)),
    one("pad2d_symmetric_pairs", "ZeroPadding2D", (3, 4, 2), padding=[2, 0]),
    one("pad2d_full", "ZeroPadding2D", (3, 3, 1), padding=[[1, 2], [0, 3]]),
    one("pad2d_mixed_variable", "ZeroPadding2D", (4, None, 2), padding=[[2, 1], 0]),
    one("pad2d_float16", "ZeroPadding2D", (2, 3, 2), "float16", padding=1),
    one("pad2d_uint8", "ZeroPadding2D", (2, 3, 1), "uint8", padding=[[0, 1], [1, 0]]),
    one("pad3d_default", "ZeroPadding3D", (2, 3, 4, 2)),
    one("pad3d_pairs", "ZeroPadding3D", (2, 2, 3, 1), padding=[[0, 1], [2, 0], [1, 1]]),
    one("pad3d_int_ints", "ZeroPadding3D", (2, 3, 2, 2), "int32", padding=[1, 0, 2]),
    # Upsampling
    one("up1d_default", "UpSampling1D", (4, 3)),
    one("up1d_size3_variable", "UpSampling1D", (4, None), size=3),
    one("up1d_int", "UpSampling1D", (3, 2), "int32", size=1),
    one("up2d_default", UP2, (3, 4, 2)),
    one("up2d_unequal", UP2, (3, 2, 2), size=[1, 3]),
    one("up2d_variable_int", UP2, (None, 3, 2), "int32", size=[1, 3]),
    one("up2d_float16", UP2, (2, 3, 1), "float16", size=2),
    one("up2d_bilinear", UP2, (3, 5, 2), size=2, interpolation="bilinear"),
    one("up2d_bilinear_unequal", UP2, (4, 3, 1), size=[3, 2], interpolation="bilinear"),
    one("up2d_bilinear_variable", UP2, (None, 4, 2), size=[1, 3], interpolation="bilinear"),
    one("up2d_bilinear_float16", UP2, (3, 3, 2), "float16", size=2, interpolation="bilinear"),
    one("up2d_bilinear_int", UP2, (3, 4, 1), "int32", size=[3, 2], interpolation="bilinear"),
    one("up2d_bicubic", UP2, (4, 5, 2), size=[2, 3], interpolation="bicubic"),
    one("up2d_bicubic_int8", UP2, (4, 4, 2), "int8", int_high=128, interpolation="bicubic"),
    one("up2d_lanczos3", UP2, (5, 4, 1), size=3, interpolation="lanczos3"),
    one("up2d_lanczos3_uint8", UP2, (4, 3, 1), "uint8", size=2, interpolation="lanczos3"),
    one("up2d_lanczos5", UP2, (6, 5, 2), size=[2, 4], interpolation="lanczos5"),
    one("up2d_lanczos5_int32", UP2, (4, 5, 1), "int32", int_high=1000, interpolation="lanczos5"),
    one("up2d_bilinear_bool", UP2, (3, 3, 1), "bool", size=2, interpolation="bilinear"),
    one("up3d_default", "UpSampling3D", (2, 3, 2, 2)),
    one("up3d_unequal", "UpSampling3D", (2, 2, 3, 1), size=[1, 2, 3]),
    one("up3d_variable_int", "UpSampling3D", (2, None, 2, 1), "int32", size=[2, 1, 2]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_resizing_layer_matches_keras(case):
    run_case(case)


# The harness runs a variable (None) axis at length 5 and expects 5 out, so it only
# covers None axes a layer leaves alone. These cases resize a None axis: the output
# axis must be inferred as None and the values at a concrete length must be Keras's.
VARIABLE = [
    ({"type": "Cropping1D", "cropping": [1, 2]}, (None, 3), (None, None, 3)),
    ({"type": "Cropping2D", "cropping": [[2, 0], 1]}, (None, None, 2), (None, None, None, 2)),
    ({"type": "Cropping3D", "cropping": 1}, (None, 4, None, 1), (None, None, 2, None, 1)),
    ({"type": "ZeroPadding1D", "padding": [0, 2]}, (None, 2), (None, None, 2)),
    ({"type": "ZeroPadding2D", "padding": [[1, 2], 0]}, (None, 3, 1), (None, None, 3, 1)),
    ({"type": "ZeroPadding3D"}, (2, None, 2, 1), (None, 4, None, 4, 1)),
    ({"type": "UpSampling1D", "size": 3}, (None, 2), (None, None, 2)),
    ({"type": UP2, "size": [2, 3]}, (None, 3, 1), (None, None, 9, 1)),
    ({"type": UP2, "interpolation": "bicubic"}, (3, None, 2), (None, 6, None, 2)),
    ({"type": "UpSampling3D"}, (None, 2, 2, 1), (None, None, 4, 4, 1)),
]


@pytest.mark.parametrize(("layer", "shape", "inferred"), VARIABLE, ids=lambda v: str(v))
def test_variable_axis_is_resized_like_keras(layer, shape, inferred):
    case = Case("variable", layer, {"x": (shape, F)})
    checked = load(spec_for(case))
    assert checked.shapes["under_test"].output.shape == inferred
    x = np.random.default_rng(0).normal(size=(2, *(7 if d is None else d for d in shape)))
    x = x.astype(F)
    ours, _ = split(CompiledModel(checked, seed=0)).apply({"x": jnp.asarray(x)}, training=False)
    want = np.asarray(keras_layer(layer)(x))
    np.testing.assert_allclose(np.asarray(ours["under_test"]), want, atol=1e-5, rtol=1e-5)


def _keras(layer_type: str, shape: tuple, **args):
    """Build the Keras layer and call it on zeros of `shape` (batch included)."""
    return lambda: getattr(keras.layers, layer_type)(**args)(np.zeros(shape, "float32"))


# (layer as written, input shape, diagnostic path, its line, message fragment, what
# Keras does with the same arguments, what Keras's error says)
REFUSED = [
    (
        "type: Cropping2D\ncropping: [[2, 3], 0]",
        [4, 6, 2],
        "cropping",
        10,
        "cropping 2 + 3 from the height axis (size 4) leaves nothing",
        _keras("Cropping2D", (1, 4, 6, 2), cropping=((2, 3), 0)),
        "should be smaller than",
    ),
    (
        "type: Cropping1D\ncropping: 3",
        [6, 2],
        "cropping",
        10,
        "cropping 3 + 3 from the steps axis (size 6) leaves nothing",
        _keras("Cropping1D", (1, 6, 2), cropping=3),
        "must be smaller than the input length",
    ),
    (
        "type: Cropping3D\ncropping: [1, 2]",
        [4, 4, 4, 1],
        "cropping",
        10,
        "needs an int or 3 entries, one per spatial axis (depth, height, width)",
        _keras("Cropping3D", (1, 4, 4, 4, 1), cropping=(1, 2)),
        "should have 3 elements",
    ),
    (
        "type: Cropping2D\ncropping: [[1, -2], 1]",
        [6, 6, 2],
        "cropping[0][1]",
        10,
        "must be >= 0",
        _keras("Cropping2D", (1, 6, 6, 2), cropping=((1, -2), 1)),
        ">= 0",
    ),
    (
        "type: ZeroPadding2D\npadding: [[1, 2, 3], 1]",
        [3, 3, 1],
        "padding",
        10,
        "each entry is an int (both sides) or [before, after], got [1, 2, 3]",
        _keras("ZeroPadding2D", (1, 3, 3, 1), padding=((1, 2, 3), 1)),
        "must be a tuple of 2 integers",
    ),
    (
        "type: ZeroPadding1D\npadding: [1, 2, 3]",
        [3, 1],
        "padding",
        10,
        "needs an int or 2 ints [before, after]",
        _keras("ZeroPadding1D", (1, 3, 1), padding=(1, 2, 3)),
        "must be a tuple of 2 integers",
    ),
    (
        "type: UpSampling2D\ninterpolation: area",
        [3, 3, 1],
        "interpolation",
        10,
        "must be one of 'nearest', 'bilinear', 'bicubic', 'lanczos3', 'lanczos5'",
        _keras("UpSampling2D", (1, 3, 3, 1), interpolation="area"),
        "Invalid value for argument `interpolation`",
    ),
    (
        "type: UpSampling2D\nsize: [2, 2, 2]",
        [3, 3, 1],
        "size",
        10,
        "needs 2 value(s)",
        _keras("UpSampling2D", (1, 3, 3, 1), size=(2, 2, 2)),
        "must be a tuple of 2 integers",
    ),
    (
        "type: UpSampling1D\nsize: [2]",
        [3, 1],
        "size",
        10,
        "must be an integer",
        _keras("UpSampling1D", (1, 3, 1), size=(2,)),
        "Expected an integer value for `size`",
    ),
    (
        "type: UpSampling3D\nsize: 0",
        [2, 2, 2, 1],
        "size",
        10,
        "must be > 0",
        _keras("UpSampling3D", (1, 2, 2, 2, 1), size=0),
        "must be a tuple of 3 integers|> 0",
    ),
    (
        "type: ZeroPadding3D",
        [3, 3, 1],
        None,
        7,
        "expects rank-5 input (batch, depth, height, width, channels), got rank 4",
        _keras("ZeroPadding3D", (1, 3, 3, 1)),
        "expected ndim=5",
    ),
    (
        "type: ZeroPadding2D\ndata_format: channels_first",
        [3, 3, 1],
        "data_format",
        10,
        "Keras's argument 'data_format' of ZeroPadding2D is not supported by modelspec yet",
        None,
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """Arguments (and inputs) Keras refuses are refused when the spec is loaded, on the
    argument at fault; channels-first layouts are refused as an unknown `data_format`."""
    layer_yaml, shape, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says)
    assert_on_layer_field(written(tmp_path, layer_yaml, shape), field, line, fragment)
