"""Conformance: image preprocessing and augmentation layers against Keras.

The harness compares inference (and, for Resizing/CenterCrop, training) with Keras's
layers; arguments and inputs Keras refuses (or would treat differently) are refused
with positioned diagnostics. The random layers' training mode is checked in
`test_preprocessing_training.py`.
"""

import keras
import numpy as np
import pytest

from tests.conformance.diagnostics import assert_on_layer_field, keras_refuses, written
from tests.conformance.harness import Case, run_case

F = "float32"


def one(id_: str, layer: dict, shape: tuple = (5, 6, 2), dtype: str = F, **kw) -> Case:
    """A case on one image input `x` of `shape` (without the batch axis)."""
    return Case(id_, layer, {"x": (shape, dtype)}, **kw)


def fixed(id_: str, layer: dict, shape: tuple = (5, 6, 2), dtype: str = F, **kw) -> Case:
    """A deterministic layer: training mode is compared with Keras too."""
    return one(id_, layer, shape, dtype, train_deterministic=True, **kw)


RS, CC, RC = "Resizing", "CenterCrop", "RandomCrop"
ROT, TR, ZM = "RandomRotation", "RandomTranslation", "RandomZoom"
CASES = [
    fixed("resize_default", {"type": RS, "height": 4, "width": 3}),
    fixed("resize_up", {"type": RS, "height": 8, "width": 9}, (4, 5, 3)),
    fixed("resize_nearest", {"type": RS, "height": 3, "width": 7, "interpolation": "nearest"}),
    fixed("resize_bicubic", {"type": RS, "height": 7, "width": 4, "interpolation": "bicubic"}),
    fixed("resize_lanczos3", {"type": RS, "height": 3, "width": 3, "interpolation": "lanczos3"}),
    fixed("resize_lanczos5", {"type": RS, "height": 9, "width": 4, "interpolation": "lanczos5"}),
    fixed("resize_antialias", {"type": RS, "height": 2, "width": 3, "antialias": True}),
    fixed("resize_crop_wide", {"type": RS, "height": 2, "width": 6, "crop_to_aspect_ratio": True}),
    fixed("resize_crop_tall", {"type": RS, "height": 6, "width": 2, "crop_to_aspect_ratio": True}),
    fixed("resize_pad_wide", {"type": RS, "height": 2, "width": 6, "pad_to_aspect_ratio": True}),
    fixed(
        "resize_pad_tall_fill",
        {"type": RS, "height": 8, "width": 3, "pad_to_aspect_ratio": True, "fill_value": 0.5},
    ),
    fixed("resize_variable", {"type": RS, "height": 3, "width": 4}, (None, None, 2)),
    fixed("resize_float16", {"type": RS, "height": 4, "width": 4}, dtype="float16"),
    fixed(
        "resize_int32",
        {"type": RS, "height": 7, "width": 4, "interpolation": "bicubic"},
        dtype="int32",
        int_high=200,
    ),
    fixed(
        "resize_uint8_pad",
        {"type": RS, "height": 4, "width": 9, "pad_to_aspect_ratio": True},
        dtype="uint8",
    ),
    fixed("resize_bool", {"type": RS, "height": 3, "width": 4}, dtype="bool"),
    fixed("center_crop", {"type": CC, "height": 3, "width": 4}),
    fixed("center_crop_odd_from_even", {"type": CC, "height": 3, "width": 3}, (6, 6, 1)),
    fixed("center_crop_same", {"type": CC, "height": 5, "width": 6}),
    fixed("center_crop_larger", {"type": CC, "height": 8, "width": 7}),
    fixed("center_crop_one_axis_larger", {"type": CC, "height": 7, "width": 2}),
    fixed("center_crop_int", {"type": CC, "height": 2, "width": 2}, dtype="int32"),
    fixed("center_crop_variable", {"type": CC, "height": 3, "width": 3}, (None, 6, 2)),
    one("random_crop_same_size", {"type": RC, "height": 5, "width": 6}),
    one("flip_default", {"type": "RandomFlip"}),
    one("flip_horizontal_int", {"type": "RandomFlip", "mode": "horizontal"}, dtype="int32"),
    one("flip_vertical_float16", {"type": "RandomFlip", "mode": "vertical"}, dtype="float16"),
    one("rotation", {"type": ROT, "factor": 0.2}),
    one(
        "rotation_pair_nearest",
        {"type": ROT, "factor": [-0.1, 0.3], "interpolation": "nearest", "fill_mode": "wrap"},
    ),
    one(
        "rotation_constant_int",
        {"type": ROT, "factor": 0.5, "fill_mode": "constant", "fill_value": 1.0},
        dtype="uint8",
    ),
    one("translation", {"type": TR, "height_factor": 0.2, "width_factor": [-0.3, 0.1]}),
    one(
        "translation_nearest_fill",
        {"type": TR, "height_factor": 0.5, "width_factor": 0.5, "fill_mode": "nearest"},
        (None, None, 3),
    ),
    one("zoom", {"type": ZM, "height_factor": 0.2}),
    one(
        "zoom_both",
        {
            "type": ZM,
            "height_factor": [-0.5, 0.2],
            "width_factor": 0.3,
            "fill_mode": "constant",
            "interpolation": "nearest",
        },
    ),
    one("contrast", {"type": "RandomContrast", "factor": 0.3}),
    one(
        "contrast_range_float16",
        {"type": "RandomContrast", "factor": [0.1, 0.5], "value_range": [0, 1]},
        dtype="float16",
    ),
    one("brightness", {"type": "RandomBrightness", "factor": 0.2}),
    one("brightness_int", {"type": "RandomBrightness", "factor": [-0.5, 0.1]}, dtype="int32"),
    one("brightness_uint8", {"type": "RandomBrightness", "factor": 0.1}, dtype="uint8"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_preprocessing_layer_matches_keras(case):
    run_case(case)


def images(shape: tuple, dtype: str = F, seed: int = 0) -> np.ndarray:
    """A batch of images with values in [0, 255) (integers for integer dtypes)."""
    x = np.random.default_rng(seed).uniform(0, 255, shape)
    return x.astype(dtype) if dtype.startswith("float") else np.floor(x).astype(dtype)


# Arguments and inputs refused, positioned
def _keras(layer_type: str, shape: tuple, dtype: str = F, **args):
    """Build the Keras layer and call it (training) on images of `shape`."""
    return lambda: getattr(keras.layers, layer_type)(**args)(images(shape, dtype), training=True)


REFUSED = [
    (
        "type: RandomRotation\nfactor: 1.5",
        [5, 5, 1],
        F,
        "factor",
        10,
        "must lie in [-1, 1]",
        _keras(ROT, (1, 5, 5, 1), factor=1.5),
        "in the range",
    ),
    (
        "type: RandomRotation\nfactor: [0.1, 0.2, 0.3]",
        [5, 5, 1],
        F,
        "factor",
        10,
        "needs a number or a list of two numbers",
        _keras(ROT, (1, 5, 5, 1), factor=(0.1, 0.2, 0.3)),
        "in the range",
    ),
    (
        "type: RandomZoom\nheight_factor: -1.0",
        [5, 5, 1],
        F,
        "height_factor",
        10,
        "must lie in (-1, 1]",
        _keras(ZM, (1, 5, 5, 1), height_factor=-1.0),
        r"\(-1.0, 1.0\]",
    ),
    (
        "type: RandomTranslation\nheight_factor: 0.1\nwidth_factor: [0, 1.2]",
        [5, 5, 1],
        F,
        "width_factor",
        11,
        "must lie in [-1, 1]",
        _keras(TR, (1, 5, 5, 1), height_factor=0.1, width_factor=(0, 1.2)),
        "range",
    ),
    (
        "type: RandomContrast\nfactor: -0.2",
        [5, 5, 1],
        F,
        "factor",
        10,
        "must lie in [0, 1]",
        _keras("RandomContrast", (1, 5, 5, 1), factor=-0.2),
        "in the range",
    ),
    (
        "type: RandomRotation\nfactor: 0.1\ninterpolation: bicubic",
        [5, 5, 1],
        F,
        "interpolation",
        11,
        "must be one of",
        _keras(ROT, (1, 5, 5, 1), factor=0.1, interpolation="bicubic"),
        "Unknown `interpolation`",
    ),
    (
        "type: RandomZoom\nheight_factor: 0.1\nfill_mode: mirror",
        [5, 5, 1],
        F,
        "fill_mode",
        11,
        "must be one of",
        _keras(ZM, (1, 5, 5, 1), height_factor=0.1, fill_mode="mirror"),
        "Unknown `fill_mode`",
    ),
    (
        "type: Resizing\nheight: 3\nwidth: 3\ncrop_to_aspect_ratio: true\npad_to_aspect_ratio: true",
        [5, 5, 1],
        F,
        "pad_to_aspect_ratio",
        13,
        "only one of crop_to_aspect_ratio",
        _keras(
            RS, (1, 5, 5, 1), height=3, width=3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True
        ),
        "Only one of",
    ),
    (
        "type: Resizing\nheight: 3\nwidth: 3\ninterpolation: area",
        [5, 5, 1],
        F,
        "interpolation",
        12,
        "must be one of",
        _keras(RS, (1, 5, 5, 1), height=3, width=3, interpolation="area"),
        "Invalid value for argument `interpolation`",
    ),
    (
        "type: RandomContrast\nfactor: 0.2",
        [5, 5, 1],
        "uint8",
        None,
        7,
        "RandomContrast needs float images",
        None,
        None,
    ),
    (
        "type: RandomBrightness\nfactor: 0.2",
        [5, 5, 1],
        "bool",
        None,
        7,
        "RandomBrightness needs float images",
        None,
        None,
    ),
    (
        "type: RandomBrightness\nfactor: 0.2\nvalue_range: [0.0, 1.0]",
        [5, 5, 1],
        "uint8",
        "value_range",
        11,
        "with uint8 images, value_range must be two integers",
        None,
        None,
    ),
    (
        "type: RandomBrightness\nfactor: 0.2\nvalue_range: [1]",
        [5, 5, 1],
        F,
        "value_range",
        11,
        "at least 2 items",
        _keras("RandomBrightness", (1, 5, 5, 1), factor=0.2, value_range=(1,)),
        "should be a list of two numbers",
    ),
    (
        "type: RandomFlip",
        [5, 5],
        F,
        None,
        7,
        "expects rank-4 input (batch, height, width, channels), got rank 3",
        None,
        None,
    ),
    (
        "type: CenterCrop\nheight: 2\nwidth: 2",
        [5, 5, 2, 1],
        F,
        None,
        7,
        "expects rank-4",
        None,
        None,
    ),
    ("type: RandomCrop\nheight: 2\nwidth: 0", [5, 5, 1], F, "width", 11, "must be > 0", None, None),
    (
        "type: RandomFlip\nseed: 3",
        [5, 5, 1],
        F,
        "seed",
        10,
        "Keras's argument 'seed' of RandomFlip is not supported by modelspec yet",
        None,
        None,
    ),
    (
        "type: RandomFlip\ndata_format: channels_first",
        [5, 5, 1],
        F,
        "data_format",
        10,
        "Keras's argument 'data_format'",
        None,
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """What Keras refuses is refused when the spec is loaded, on the argument at fault;
    inputs whose dtype or rank Keras would treat differently are refused on `inputs`."""
    layer_yaml, shape, dtype, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says, (ValueError, TypeError, NotImplementedError))
    assert_on_layer_field(written(tmp_path, layer_yaml, shape, dtype), field, line, fragment)
