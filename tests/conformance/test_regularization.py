"""Conformance: regularization layers (SpatialDropout1D/2D/3D, GaussianNoise,
GaussianDropout, AlphaDropout, ActivityRegularization) against Keras.

The harness compares inference (identity) with Keras and, for random training modes,
checks only inverted dropout's structure. So the training behaviour of each layer is
pinned here by property tests with fixed seeds, each run on *both* Keras's output and
ours: whole channels dropped (spatial dropout), multiplicative noise of mean 1 and
deviation sqrt(rate/(1-rate)) (Gaussian dropout), additive noise (Gaussian noise), and
the two-valued affine map of alpha dropout. Argument and input errors are positioned.
"""

import math

import jax.numpy as jnp
import keras
import numpy as np
import pytest
import yaml

from modelspec import load
from modelspec.compiler.layers.regularization import SELU_ALPHA, SELU_SCALE
from modelspec.compiler.model import CompiledModel, split
from modelspec.compiler.penalties import build_penalties
from tests.conformance.diagnostics import one_argument_diagnostic
from tests.conformance.harness import Case, run_case, spec_for

F = "float32"

CASES: list[Case] = [
    Case("spatial_dropout1d", {"type": "SpatialDropout1D", "rate": 0.5}, {"x": ((6, 8), F)}),
    Case("spatial_dropout1d_zero", {"type": "SpatialDropout1D", "rate": 0.0}, {"x": ((4, 3), F)}),
    Case(
        "spatial_dropout1d_unknown_steps",
        {"type": "SpatialDropout1D", "rate": 0.3},
        {"x": ((None, 8), F)},
    ),
    Case("spatial_dropout2d", {"type": "SpatialDropout2D", "rate": 0.4}, {"x": ((4, 4, 8), F)}),
    Case(
        "spatial_dropout2d_float16",
        {"type": "SpatialDropout2D", "rate": 0.5},
        {"x": ((3, 3, 8), "float16")},
        atol=1e-3,
    ),
    Case("spatial_dropout3d", {"type": "SpatialDropout3D", "rate": 0.5}, {"x": ((2, 3, 2, 8), F)}),
    Case("gaussian_noise", {"type": "GaussianNoise", "stddev": 0.1}, {"x": ((5, 4), F)}),
    Case("gaussian_noise_zero", {"type": "GaussianNoise", "stddev": 0.0}, {"x": ((4,), F)}),
    Case(
        "gaussian_noise_bfloat16",
        {"type": "GaussianNoise", "stddev": 1.0},
        {"x": ((4,), "bfloat16")},
    ),
    Case("gaussian_dropout", {"type": "GaussianDropout", "rate": 0.3}, {"x": ((6,), F)}),
    Case("gaussian_dropout_zero", {"type": "GaussianDropout", "rate": 0.0}, {"x": ((2, 3), F)}),
    Case("alpha_dropout", {"type": "AlphaDropout", "rate": 0.2}, {"x": ((8,), F)}),
    Case(
        "alpha_dropout_noise_shape",
        {"type": "AlphaDropout", "rate": 0.5, "noise_shape": [None, 1, 6]},
        {"x": ((4, 6), F)},
    ),
    Case("alpha_dropout_zero", {"type": "AlphaDropout", "rate": 0.0}, {"x": ((3,), F)}),
    Case("activity_regularization", {"type": "ActivityRegularization"}, {"x": ((4,), F)}),
    Case(
        "activity_regularization_l1_l2",
        {"type": "ActivityRegularization", "l1": 0.01, "l2": 0.1},
        {"x": ((2, 3), F)},
    ),
    Case(
        "activity_regularization_int",
        {"type": "ActivityRegularization", "l2": 0.5},
        {"x": ((3,), "int32")},
    ),
    Case(
        "activity_regularization_float16",
        {"type": "ActivityRegularization", "l1": 1.0},
        {"x": ((3,), "float16")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_regularization_layer_matches_keras(case):
    run_case(case)


# --- training-mode properties, checked on Keras's output and on ours ---------------


def ours_in_training(layer: dict, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Our layer's training-mode output for the batch `x` (model seeded with `seed`)."""
    case = Case("prop", layer, {"x": (x.shape[1:], str(x.dtype))})
    model = CompiledModel(load(spec_for(case)), seed=seed)
    outputs, _ = split(model).apply({"x": jnp.asarray(x)}, training=True)
    return np.asarray(outputs["under_test"])


def keras_in_training(layer: dict, x: np.ndarray, seed: int = 0) -> np.ndarray:
    args = {k: v for k, v in layer.items() if k != "type"}
    return np.asarray(getattr(keras.layers, layer["type"])(**args, seed=seed)(x, training=True))


def both_in_training(layer: dict, x: np.ndarray, seed: int = 0):
    """(implementation name, training output) for Keras and for us."""
    return [
        ("keras", keras_in_training(layer, x, seed)),
        ("ours", ours_in_training(layer, x, seed)),
    ]


@pytest.mark.parametrize(
    ("layer_type", "spatial"),
    [("SpatialDropout1D", (7,)), ("SpatialDropout2D", (3, 4)), ("SpatialDropout3D", (2, 3, 2))],
)
@pytest.mark.parametrize("rate", [0.25, 0.6])
def test_spatial_dropout_drops_whole_channels(layer_type, spatial, rate):
    """Each (sample, channel) is zero at every spatial position or x/(1-rate) at every
    one; the dropped fraction of the 16 x 32 pairs is `rate` (±0.08, > 5 sigma)."""
    x = np.random.default_rng(1).normal(size=(16, *spatial, 32)).astype(F)
    axes = tuple(range(1, 1 + len(spatial)))
    for who, y in both_in_training({"type": layer_type, "rate": rate}, x):
        dropped = np.all(y == 0, axis=axes)
        kept = np.all(np.isclose(y, x / (1 - rate), rtol=1e-6, atol=1e-6), axis=axes)
        assert np.all(dropped ^ kept), f"{who}: a channel is partly dropped"
        assert abs(dropped.mean() - rate) < 0.08, f"{who}: dropped {dropped.mean()}"


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_gaussian_dropout_is_multiplicative_noise_of_mean_one(rate):
    """y / x has mean 1 and deviation sqrt(rate / (1 - rate)) over 32768 draws
    (tolerances > 5 standard errors)."""
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=(64, 512)).astype(F)
    std = math.sqrt(rate / (1 - rate))
    for who, y in both_in_training({"type": "GaussianDropout", "rate": rate}, x):
        noise = y / x
        assert abs(noise.mean() - 1.0) < 6 * std / math.sqrt(noise.size), who
        assert abs(noise.std() - std) < 0.03 * std, who


@pytest.mark.parametrize("stddev", [0.05, 1.0])
def test_gaussian_noise_is_additive_noise_of_mean_zero(stddev):
    x = np.random.default_rng(3).normal(size=(64, 512)).astype(F)
    for who, y in both_in_training({"type": "GaussianNoise", "stddev": stddev}, x):
        noise = y - x
        assert abs(noise.mean()) < 6 * stddev / math.sqrt(noise.size), who
        assert abs(noise.std() - stddev) < 0.03 * stddev, who


def alpha_constants(rate: float) -> tuple[float, float, float]:
    """Keras's (a, b, alpha_p) of AlphaDropout at `rate`, from SELU's constants."""
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    return a, -a * alpha_p * rate, alpha_p


@pytest.mark.parametrize("rate", [0.1, 0.4])
def test_alpha_dropout_values_and_moments(rate):
    """Every value is `a*x + b` (kept) or `a*alpha_p + b` (dropped), a fraction `rate`
    is dropped, and a standard normal input keeps mean 0 and variance 1 (the SELU
    self-normalizing property Keras's constants are chosen for)."""
    a, b, alpha_p = alpha_constants(rate)
    x = np.random.default_rng(4).normal(size=(64, 512)).astype(F)
    for who, y in both_in_training({"type": "AlphaDropout", "rate": rate}, x):
        kept = np.isclose(y, a * x + b, rtol=1e-5, atol=1e-5)
        dropped = np.isclose(y, a * alpha_p + b, rtol=1e-5, atol=1e-5)
        assert np.all(kept | dropped), f"{who}: a value is neither a*x+b nor a*alpha_p+b"
        assert abs(dropped.mean() - rate) < 0.02, f"{who}: dropped {dropped.mean()}"
        assert abs(y.mean()) < 0.03 and abs(y.var() - 1.0) < 0.05, (who, y.mean(), y.var())


def test_alpha_dropout_noise_shape_shares_the_mask():
    """noise_shape [null, 1, 6]: one draw per (sample, feature), the same at every step."""
    layer = {"type": "AlphaDropout", "rate": 0.5, "noise_shape": [None, 1, 6]}
    x = np.random.default_rng(5).normal(size=(32, 5, 6)).astype(F)
    a, b, alpha_p = alpha_constants(0.5)
    for who, y in both_in_training(layer, x):
        dropped = np.isclose(y, a * alpha_p + b, rtol=1e-5, atol=1e-5)
        assert np.all(dropped.all(axis=1) | ~dropped.any(axis=1)), who
        assert 0.3 < dropped.mean() < 0.7, who


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "SpatialDropout2D", "rate": 0.5},
        {"type": "GaussianNoise", "stddev": 0.5},
        {"type": "GaussianDropout", "rate": 0.5},
        {"type": "AlphaDropout", "rate": 0.5},
    ],
    ids=lambda layer: layer["type"],
)
def test_training_noise_follows_the_model_seed(layer):
    """Randomness comes from the model's seed (not a `seed` field): same seed, same
    output; another seed, another output."""
    x = np.random.default_rng(6).normal(size=(4, 3, 3, 8)).astype(F)
    first, again = ours_in_training(layer, x, 0), ours_in_training(layer, x, 0)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, ours_in_training(layer, x, 1))


@pytest.mark.parametrize(("l1", "l2"), [(0.01, 0.0), (0.0, 0.3), (0.2, 0.05), (0.0, 0.0)])
def test_activity_penalty_matches_keras_layer_loss(l1, l2):
    """ActivityRegularization inside a model (not its output) adds Keras's recorded
    layer loss `(l1 * sum|y| + l2 * sum y**2) / batch_size` through the model's
    penalties, in training and inference alike."""
    x = np.random.default_rng(7).normal(size=(5, 3, 4)).astype(F)
    klayer = keras.layers.ActivityRegularization(l1=l1, l2=l2)
    klayer(x)
    (want,) = [float(v) for v in klayer.losses]
    spec = load(
        {
            "model": {
                "inputs": {"x": {"shape": [3, 4]}},
                "layers": [
                    {"type": "ActivityRegularization", "name": "reg", "l1": l1, "l2": l2},
                    {"type": "Dense", "units": 2},
                ],
            }
        }
    )
    penalties = build_penalties(spec)
    assert penalties.taps == ("reg",) and penalties.regularized
    state = split(CompiledModel(spec, seed=0))
    for training in (True, False):
        values, _ = state.apply({"x": jnp.asarray(x)}, training=training, taps=penalties.taps)
        got = float(penalties.loss(state.params, values, None))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7)


def test_activity_regularization_refuses_activity_regularizer(tmp_path):
    """Keras's constructor passes its own L1L2 as `activity_regularizer`, so a second
    one is an error there too."""
    with pytest.raises(TypeError, match="activity_regularizer"):
        keras.layers.ActivityRegularization(l1=0.1, activity_regularizer="l2")
    d = load_error(tmp_path, "ActivityRegularization", "activity_regularizer: l2", [6])
    assert (d.line, d.col, d.path) == (6, 29, "model.layers[0].activity_regularizer")
    assert "set by its `l1` and `l2`" in d.message


# --- positioned errors -------------------------------------------------------------

RATE = "rate: 0.5\n      "
"""An argument line before the one under test (which then starts line 7)."""


def load_error(tmp_path, layer_type: str, arg: str, shape: list, dtype: str = F):
    """The single diagnostic of a spec whose one layer is `layer_type` with the argument
    line `arg` (written on line 6, after 6 spaces)."""
    return one_argument_diagnostic(tmp_path, layer_type, arg, shape, dtype)


def keras_refuses(layer_type: str, args: dict, shape: list, dtype: str = F) -> None:
    """Keras raises for the same arguments, at construction or when called in training."""
    try:
        layer = getattr(keras.layers, layer_type)(**args)
        layer(np.ones((2, *shape), dtype), training=True)
    except (ValueError, TypeError, ZeroDivisionError):
        return
    pytest.fail(f"Keras accepted {layer_type}({args}) on {shape} {dtype}")


@pytest.mark.parametrize(
    ("layer_type", "arg", "args", "field", "text"),
    [
        ("GaussianNoise", "stddev: 1.5", {"stddev": 1.5}, "stddev", "<= 1"),
        ("GaussianNoise", "stddev: -0.1", {"stddev": -0.1}, "stddev", ">= 0"),
        ("GaussianDropout", "rate: 1.0", {"rate": 1.0}, "rate", "< 1"),
        ("AlphaDropout", "rate: -0.5", {"rate": -0.5}, "rate", ">= 0"),
        ("SpatialDropout1D", "rate: 1.5", {"rate": 1.5}, "rate", "< 1"),
        ("ActivityRegularization", "l1: -1.0", {"l1": -1.0}, "l1", ">= 0"),
        ("ActivityRegularization", "l2: .inf", {"l2": math.inf}, "l2", "finite"),
    ],
)
def test_argument_errors_are_positioned(tmp_path, layer_type, arg, args, field, text):
    shape = [4, 6] if layer_type.startswith("Spatial") else [6]
    keras_refuses(layer_type, args, shape)
    d = load_error(tmp_path, layer_type, arg, shape)
    assert (d.line, d.col, d.path) == (6, 7 + len(field) + 2, f"model.layers[0].{field}")
    assert text in d.message


@pytest.mark.parametrize(
    ("layer_type", "arg", "shape", "dtype", "field", "text"),
    [
        ("SpatialDropout2D", "rate: 0.5", [4, 6], F, "inputs", "(batch, height, width, channels)"),
        ("SpatialDropout3D", "rate: 0.5", [4, 4, 6], F, "inputs", "expects rank-5 input"),
        ("SpatialDropout1D", "rate: 0.5", [4, 6], "int32", "inputs", "needs a float input"),
        ("GaussianDropout", "rate: 0.5", [6], "int32", "inputs", "needs a float input, got int32"),
        ("GaussianNoise", "stddev: 0.5", [6], "uint8", "inputs", "needs a float input"),
        ("AlphaDropout", f"{RATE}noise_shape: [null, 3]", [6], F, "noise_shape", "axis 1 must"),
        ("AlphaDropout", f"{RATE}noise_shape: [1]", [2, 6], F, "noise_shape", "needs 3 entries"),
    ],
)
def test_input_errors_are_positioned(tmp_path, layer_type, arg, shape, dtype, field, text):
    """Input errors point at the layer; argument errors at the argument (line 7)."""
    if field != "inputs" and "entries" not in text:
        # Keras takes a shorter noise_shape (broadcast from the right, but its nulls
        # filled from the left); we refuse it (one entry per axis, as Dropout's).
        keras_refuses(
            layer_type,
            {"rate": 0.5, "noise_shape": yaml.safe_load(arg.replace(RATE, "rate: 0.5\n"))[field]},
            shape,
        )
    d = load_error(tmp_path, layer_type, arg, shape, dtype)
    # An input error is the layer's, at its first line: `model.layers[0]` at `type`.
    want = (
        (5, 7, "model.layers[0]") if field == "inputs" else (7, 20, "model.layers[0].noise_shape")
    )
    assert (d.line, d.col, d.path) == want, d.format()
    assert text in d.message and layer_type in d.format(), d.message


@pytest.mark.parametrize(
    ("layer_type", "arg", "field"),
    [
        ("SpatialDropout2D", f"{RATE}data_format: channels_last", "data_format"),
        ("GaussianNoise", "stddev: 0.1\n      seed: 3", "seed"),
        ("AlphaDropout", f"{RATE}seed: 3", "seed"),
    ],
)
def test_keras_only_arguments_are_refused(tmp_path, layer_type, arg, field):
    """Channels-last only (no `data_format`); no `seed`: noise draws from the spec's seed."""
    d = load_error(tmp_path, layer_type, arg, [4, 4, 6])
    assert (d.line, d.col, d.path) == (7, 7, f"model.layers[0].{field}")
    assert "is not supported by modelspec yet" in d.message
