"""Conformance: training mode of the random preprocessing layers.

Checked three ways: Keras's own draws (`get_random_transformation`) fed to our `apply`
give Keras's `transform_images` output; a fixed-angle rotation (and any affine
transform) equals `keras.ops.image.affine_transform`; and properties of our own draws:
bounds equal to Keras's factor ranges, flips are exact flips, crops are sub-windows,
clipping to `value_range`, same seed same draws, new step new draws.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.layers.image_ops import affine_transform, rotation_matrix
from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from tests.conformance.harness import keras_layer, spec_for
from tests.conformance.test_preprocessing import RC, ROT, TR, ZM, F, images, one


def built(layer: dict, shape: tuple, dtype: str = F, seed: int = 0):
    """(our NNX layer, the compiled model, its inferred output type) for one layer."""
    checked = load(spec_for(one("built", layer, shape, dtype)))
    model = CompiledModel(checked, seed=seed)
    return model.layers["under_test"], model, checked.shapes["under_test"].output


# Keras's draws -> our apply == Keras's transform_images (the training path)
def _crop_params(t):
    """Keras's (h_start, w_start): Python ints for its fixed window, arrays when drawn."""
    return {"h_start": t[0], "w_start": t[1]}


KERAS_DRAWS = [
    ({"type": "RandomFlip"}, (4, 5, 6, 2), F, dict),
    ({"type": "RandomFlip", "mode": "vertical"}, (4, 5, 6, 1), F, dict),
    ({"type": ROT, "factor": 0.3}, (3, 7, 5, 2), F, dict),
    (
        {
            "type": ROT,
            "factor": [-0.5, 0.5],
            "fill_mode": "constant",
            "interpolation": "nearest",
            "fill_value": 7.0,
        },
        (3, 6, 6, 1),
        F,
        dict,
    ),
    ({"type": ROT, "factor": 0.4, "fill_mode": "wrap"}, (2, 5, 8, 3), F, dict),
    ({"type": ROT, "factor": 0.4, "fill_mode": "nearest"}, (2, 8, 5, 1), F, dict),
    ({"type": TR, "height_factor": 0.3, "width_factor": [-0.4, 0.2]}, (3, 6, 7, 2), F, dict),
    (
        {
            "type": TR,
            "height_factor": 0.5,
            "width_factor": 0.5,
            "fill_mode": "constant",
            "interpolation": "nearest",
        },
        (3, 5, 5, 1),
        F,
        dict,
    ),
    ({"type": ZM, "height_factor": 0.4}, (3, 6, 7, 2), F, dict),
    (
        {
            "type": ZM,
            "height_factor": [-0.5, -0.1],
            "width_factor": [0.2, 0.6],
            "fill_mode": "wrap",
        },
        (3, 7, 6, 1),
        F,
        dict,
    ),
    ({"type": "RandomContrast", "factor": [0.2, 0.8]}, (4, 5, 6, 3), F, dict),
    ({"type": "RandomContrast", "factor": 0.9, "value_range": [0, 100]}, (4, 5, 6, 3), F, dict),
    ({"type": "RandomBrightness", "factor": 0.5}, (4, 5, 6, 3), F, dict),
    ({"type": "RandomBrightness", "factor": [-0.3, 0.4]}, (4, 5, 6, 3), "int32", dict),
    ({"type": RC, "height": 3, "width": 4}, (2, 7, 8, 2), F, _crop_params),
    ({"type": RC, "height": 5, "width": 3}, (2, 5, 8, 2), F, _crop_params),
    ({"type": RC, "height": 6, "width": 6}, (2, 4, 5, 1), F, _crop_params),
]


def numbered(table: list) -> list[str]:
    """Stable test ids: row number and layer type."""
    return [f"{i}-{row[0]['type']}" for i, row in enumerate(table)]


@pytest.mark.parametrize(
    ("layer", "shape", "dtype", "params"), KERAS_DRAWS, ids=numbered(KERAS_DRAWS)
)
def test_training_transform_equals_keras_for_kerass_draws(layer, shape, dtype, params):
    ours, _, _ = built(layer, shape[1:], dtype)
    klayer = keras_layer(layer)
    for seed in range(3):
        x = images(shape, dtype, seed)
        t = klayer.get_random_transformation(x, training=True)
        want = np.asarray(klayer.transform_images(keras.ops.convert_to_tensor(x), t))
        got = np.asarray(ours.apply(jnp.asarray(x), params(t)))
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5, err_msg=str(t))


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_fixed_rotation_equals_keras_affine_transform(fill_mode, interpolation):
    """A rotation by fixed angles: our matrix equals Keras's `_compute_affine_matrix`
    and our resampling equals `keras.ops.image.affine_transform`."""
    x = images((4, 7, 9, 2))
    angle = np.array([0.0, 17.0, -90.0, 200.0], F)
    klayer = keras.layers.RandomRotation(0.5)
    z, o = np.zeros(4, F), np.ones(4, F)
    kmatrix = klayer._compute_affine_matrix(0.5, 0.5, angle, z, z, o, z, z, 7, 9)
    ours = rotation_matrix(jnp.asarray(angle), 7, 9)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(kmatrix), atol=1e-6)
    want = keras.ops.image.affine_transform(x, kmatrix, interpolation, fill_mode, 3.0)
    got = affine_transform(jnp.asarray(x), ours, interpolation, fill_mode, 3.0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)


def test_general_affine_transform_equals_keras():
    """Shear and scale too: any transform (projective terms zero) resamples as Keras."""
    x = images((3, 6, 5, 3))
    rng = np.random.default_rng(1)
    transform = np.concatenate([rng.normal(size=(3, 6)), np.zeros((3, 2))], axis=1).astype(F)
    want = keras.ops.image.affine_transform(x, transform, "bilinear", "reflect")
    got = affine_transform(jnp.asarray(x), jnp.asarray(transform), "bilinear", "reflect")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)


# Properties of our own draws (training mode)
def train(layer: dict, x: np.ndarray, seed: int = 0, steps: int = 1) -> list[np.ndarray]:
    """Training outputs of `steps` successive steps of a one-layer model."""
    _, model, out = built(layer, x.shape[1:], str(x.dtype), seed)
    state, outs = split(model), []
    for _ in range(steps):
        y, state = state.apply({"x": jnp.asarray(x)}, training=True)
        y = np.asarray(y["under_test"])
        assert y.shape == (x.shape[0], *out.shape[1:]) and str(y.dtype) == out.dtype
        outs.append(y)
    return outs


RANDOM = [
    {"type": "RandomFlip"},
    {"type": ROT, "factor": 0.3},
    {"type": TR, "height_factor": 0.3, "width_factor": 0.2},
    {"type": ZM, "height_factor": 0.3},
    {"type": "RandomContrast", "factor": 0.5},
    {"type": "RandomBrightness", "factor": 0.3},
    {"type": RC, "height": 3, "width": 4},
]


@pytest.mark.parametrize("layer", RANDOM, ids=lambda v: v["type"])
def test_same_seed_same_draws_new_step_new_draws(layer):
    x = images((8, 6, 7, 2))
    first, second = train(layer, x, seed=3, steps=2)
    (again,) = train(layer, x, seed=3)
    (other,) = train(layer, x, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second), "a new step must draw anew"
    assert not np.array_equal(first, other), "another seed must draw otherwise"


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flips_are_exact_flips(mode):
    x = images((32, 4, 5, 2))
    (y,) = train({"type": "RandomFlip", "mode": mode}, x)
    axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[mode]
    flipped = np.flip(x, axis=axes)
    same = [np.array_equal(a, b) for a, b in zip(y, x, strict=True)]
    flip = [np.array_equal(a, b) for a, b in zip(y, flipped, strict=True)]
    assert all(s or f for s, f in zip(same, flip, strict=True))
    assert 0 < sum(flip) < len(x), "each image is flipped with probability 1/2"


def test_rotation_by_zero_is_identity():
    x = images((3, 6, 7, 2))
    (y,) = train({"type": ROT, "factor": 0.0}, x)
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_crops_are_sub_windows_and_vary():
    x = images((4, 9, 10, 2))
    starts = set()
    for y in train({"type": RC, "height": 4, "width": 3}, x, steps=12):
        found = [
            (i, j)
            for i in range(9 - 4 + 1)
            for j in range(10 - 3 + 1)
            if np.array_equal(y, x[:, i : i + 4, j : j + 3])
        ]
        assert len(found) == 1, "the same window of every image of the batch"
        starts.add(found[0])
    assert len(starts) > 3


@pytest.mark.parametrize(
    ("layer", "low", "high"),
    [
        ({"type": "RandomContrast", "factor": [0.5, 1.0], "value_range": [10, 200]}, 10, 200),
        ({"type": "RandomContrast", "factor": 1.0, "value_range": [0, 1]}, 0, 1),
        ({"type": "RandomBrightness", "factor": 1.0, "value_range": [255, 20]}, 20, 255),
    ],
)
def test_colour_layers_clip_to_value_range(layer, low, high):
    x = images((16, 5, 5, 3)) * (high / 255.0)
    for y in train(layer, x, steps=3):
        assert y.min() >= low and y.max() <= high
        assert np.isclose(y, low).any() or np.isclose(y, high).any(), "clipping happened"


DRAWS = [
    ({"type": ROT, "factor": [-0.2, 0.3]}, "angle", ("factor",), 360.0, 0.0),
    ({"type": ROT, "factor": -0.25}, "angle", ("factor",), 360.0, 0.0),
    ({"type": "RandomContrast", "factor": 0.4}, "contrast_factor", ("factor",), 1.0, 1.0),
    ({"type": "RandomBrightness", "factor": [-0.1, 0.6]}, "rgb_delta", ("factor",), 255.0, 0.0),
    (
        {"type": ZM, "height_factor": [-0.5, 0.3], "width_factor": 0.2},
        "height_zoom",
        ("height_lower", "height_upper"),
        1.0,
        1.0,
    ),
    (
        {"type": ZM, "height_factor": [-0.5, 0.3], "width_factor": 0.2},
        "width_zoom",
        ("width_lower", "width_upper"),
        1.0,
        1.0,
    ),
]


@pytest.mark.parametrize(("layer", "key", "attrs", "scale", "shift"), DRAWS, ids=numbered(DRAWS))
def test_draws_fill_kerass_factor_range(layer, key, attrs, scale, shift):
    """Our parameter draws lie in, and spread over, the range Keras derives from the
    same arguments (its `factor` / `*_lower`, `*_upper` attributes)."""
    klayer = keras_layer(layer)
    bounds = [getattr(klayer, a) for a in attrs]
    low, high = bounds[0] if len(bounds) == 1 else bounds
    if layer["type"] == "RandomContrast":  # Keras draws in [1 - lower, 1 + upper]
        low, high = -low, high
    low, high = low * scale + shift, high * scale + shift
    ours, _, _ = built(layer, (4, 4, 1))
    x = jnp.zeros((512, 4, 4, 1))
    values = np.asarray(ours.draw(jax.random.key(0), x)[key]).ravel()
    span = high - low
    assert values.min() >= low - 1e-4 and values.max() <= high + 1e-4
    assert values.min() < low + 0.05 * span and values.max() > high - 0.05 * span


def test_translation_draws_are_fractions_of_the_image_size():
    klayer = keras.layers.RandomTranslation([-0.2, 0.4], 0.25)
    ours, _, _ = built({"type": TR, "height_factor": [-0.2, 0.4], "width_factor": 0.25}, (10, 8, 1))
    shifts = np.asarray(ours.draw(jax.random.key(1), jnp.zeros((512, 10, 8, 1)))["translations"])
    for column, size, (low, high) in (
        (1, 10, (klayer.height_lower, klayer.height_upper)),
        (0, 8, (klayer.width_lower, klayer.width_upper)),
    ):
        values = shifts[:, column] / size
        assert low - 1e-6 <= values.min() < low + 0.05 and high - 0.05 < values.max() <= high
