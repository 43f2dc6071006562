"""Loss specs and their JAX numerics against Keras 3 (JAX backend) on seeded random data."""

from __future__ import annotations

import inspect
import itertools
import subprocess
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from modelspec.runtime.objective.losses import LossFn, build_loss, reduce_weighted_values
from modelspec.schema import losses as schema

B, C, T = 6, 5, 3
RTOL, ATOL = 1e-5, 1e-6
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight")
ADAPTER = TypeAdapter(schema.Loss)


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, sample_weight) for a kind of problem."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(B, C)).astype("float32")
    probs = np.asarray(jax.nn.softmax(logits))
    labels = rng.integers(0, C, size=(B,))
    sw = rng.uniform(0.0, 2.0, size=(B,)).astype("float32")
    sw[1] = 0.0
    if kind == "sparse_logits":
        return labels, logits, sw
    if kind == "sparse_probs":
        return labels, probs, sw
    if kind == "sparse_col":  # labels shaped (B, 1)
        return labels[:, None], probs, sw
    if kind == "onehot_logits":
        return np.eye(C, dtype="float32")[labels], logits, sw
    if kind == "onehot_probs":
        return np.eye(C, dtype="float32")[labels], probs, sw
    if kind == "binary_col":  # (B, 1) vs (B, 1)
        y = rng.integers(0, 2, size=(B, 1)).astype("float32")
        return y, logits[:, :1], sw
    if kind == "binary_flat":  # (B,) vs (B, 1), as Keras squeezes/expands
        return rng.integers(0, 2, size=(B,)), logits[:, :1], sw
    if kind == "multilabel":
        return rng.integers(0, 2, size=(B, C)).astype("float32"), logits, sw
    if kind == "pm1":  # -1/+1 labels for hinge
        return rng.choice([-1.0, 1.0], size=(B, C)).astype("float32"), logits, sw
    if kind == "dist":  # two distributions for KL
        other = np.asarray(jax.nn.softmax(rng.normal(size=(B, C)))).astype("float32")
        return other, probs, sw
    if kind == "regression":
        return rng.normal(size=(B, C)).astype("float32"), logits, sw
    raise ValueError(kind)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


CASES = [
    *[("SparseCategoricalCrossentropy", {"from_logits": True}, k) for k in ("sparse_logits",)],
    ("SparseCategoricalCrossentropy", {}, "sparse_probs"),
    ("SparseCategoricalCrossentropy", {}, "sparse_col"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 2}, "sparse_probs"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1, "from_logits": True}, "sparse_logits"),
    ("CategoricalCrossentropy", {"from_logits": True}, "onehot_logits"),
    ("CategoricalCrossentropy", {}, "onehot_probs"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "onehot_probs"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2, "from_logits": True}, "onehot_logits"),
    ("BinaryCrossentropy", {"from_logits": True}, "binary_col"),
    ("BinaryCrossentropy", {"from_logits": True}, "binary_flat"),
    ("BinaryCrossentropy", {}, "binary_probs"),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, "multilabel_probs"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1, "from_logits": True}, "multilabel"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("Huber", {}, "regression"),
    ("Huber", {"delta": 0.5}, "regression"),
    ("LogCosh", {}, "regression"),
    ("KLDivergence", {}, "dist"),
    ("CosineSimilarity", {}, "regression"),
    ("CosineSimilarity", {"axis": 0}, "regression"),
    ("Hinge", {}, "multilabel"),
    ("Hinge", {}, "pm1"),
]


def _case_data(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind.endswith("_probs") and kind.split("_")[0] in ("binary", "multilabel"):
        base = "binary_col" if kind.startswith("binary") else "multilabel"
        y, logits, sw = _data(base)
        return y, _sigmoid(logits).astype("float32"), sw
    return _data(kind)


def _keras_loss(name: str, kwargs: dict, reduction: str) -> keras.losses.Loss:
    return getattr(keras.losses, name)(reduction=reduction, **kwargs)


@pytest.mark.parametrize(("name", "kwargs", "kind"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_matches_keras(name: str, kwargs: dict, kind: str, reduction: str, weighted: bool):
    y_true, y_pred, sw = _case_data(kind)
    if kwargs.get("axis") == 0:  # one loss value per column: weight the columns
        sw = np.linspace(0.0, 2.0, C, dtype="float32")
    sw = sw if weighted else None
    ours = build_loss({"type": name, "reduction": reduction, **kwargs})
    expected = _keras_loss(name, kwargs, reduction)(y_true, y_pred, sample_weight=sw)
    got = ours(y_true, y_pred, sw)
    assert got.shape == ()
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("name", "kwargs", "kind"), CASES, ids=lambda v: str(v))
def test_per_sample_matches_keras_call(name: str, kwargs: dict, kind: str):
    y_true, y_pred, _ = _case_data(kind)
    ours = build_loss({"type": name, **kwargs}).per_sample(y_true, y_pred)
    expected = _keras_loss(name, kwargs, "none")(y_true, y_pred)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_class", [None, 0])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sequence_sparse_ce_with_padding_weights(reduction, ignore_class, from_logits):
    """(B, T, C) outputs with a (B, T) padding mask as sample weights, as a trainer uses."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(B, T, C)).astype("float32")
    y_pred = logits if from_logits else np.asarray(jax.nn.softmax(logits))
    y_true = rng.integers(0, C, size=(B, T))
    mask = (rng.uniform(size=(B, T)) > 0.3).astype("float32")
    kwargs = {"from_logits": from_logits, "ignore_class": ignore_class}
    keras_loss = keras.losses.SparseCategoricalCrossentropy(reduction=reduction, **kwargs)
    expected = keras_loss(y_true, y_pred, sample_weight=mask)
    ours = build_loss({"type": "SparseCategoricalCrossentropy", "reduction": reduction, **kwargs})
    got = jax.jit(ours.__call__)(y_true, y_pred, mask)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=RTOL, atol=ATOL)


def test_categorical_crossentropy_on_another_axis():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(B, C, T)).astype("float32")
    y_true = np.moveaxis(np.eye(C, dtype="float32")[rng.integers(0, C, size=(B, T))], -1, 1)
    for from_logits in (False, True):
        y_pred = logits if from_logits else np.asarray(jax.nn.softmax(logits, axis=1))
        kwargs = {"from_logits": from_logits, "axis": 1}
        expected = keras.losses.CategoricalCrossentropy(**kwargs)(y_true, y_pred)
        got = build_loss({"type": "CategoricalCrossentropy", **kwargs})(y_true, y_pred)
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=RTOL, atol=ATOL)


def test_extreme_inputs_are_finite_and_match():
    """Saturated probabilities hit Keras's epsilon clipping; huge logits stay finite."""
    y_true = np.array([0, 1, 2])
    probs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype="float32")
    logits = np.array([[80.0, -80.0, 0.0], [-90.0, 90.0, 0.0], [0.0, 0.0, -100.0]], "float32")
    for spec, y_pred in (
        ({"type": "SparseCategoricalCrossentropy"}, probs),
        ({"type": "SparseCategoricalCrossentropy", "from_logits": True}, logits),
        ({"type": "BinaryCrossentropy"}, probs),
        ({"type": "BinaryCrossentropy", "from_logits": True}, logits),
        ({"type": "LogCosh"}, logits),
    ):
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        labels = y_true if "Sparse" in spec["type"] else (probs > 0.5).astype("float32")
        expected = getattr(keras.losses, spec["type"])(**kwargs)(labels, y_pred)
        got = build_loss(spec)(labels, y_pred)
        assert np.isfinite(got)
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=RTOL, atol=ATOL)


def test_gradients_finite_where_ignore_class_drops_positions():
    y_true = jnp.array([0, 1, 2, 1])
    logits = jnp.array(np.random.default_rng(5).normal(size=(4, 3)), jnp.float32)
    loss = build_loss({"type": "SparseCategoricalCrossentropy", "ignore_class": 1})
    grad = jax.grad(lambda x: loss(y_true, jax.nn.softmax(x)))(logits)
    assert np.all(np.isfinite(grad))
    assert np.allclose(grad[1], 0.0) and np.allclose(grad[3], 0.0)


def test_jit_and_bfloat16_predictions():
    y_true, y_pred, sw = _data("sparse_logits")
    loss = build_loss({"type": "SparseCategoricalCrossentropy", "from_logits": True})
    eager = loss(y_true, y_pred, sw)
    jitted = jax.jit(loss.__call__)(y_true, y_pred, sw)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=RTOL, atol=ATOL)
    low = loss(y_true, jnp.asarray(y_pred, jnp.bfloat16), sw)
    assert low.dtype == jnp.float32


def test_shape_mismatches_raise_like_keras():
    loss = build_loss("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="labels of shape"):
        loss(np.zeros((B, 2)), np.ones((B, C)) / C)
    with pytest.raises(ValueError, match="same shape"):
        build_loss("categorical_crossentropy")(np.zeros((B, C - 1)), np.ones((B, C)) / C)


def test_reduce_weighted_values_edge_cases():
    assert reduce_weighted_values(jnp.float32(3.0)).shape == ()
    zero_weights = reduce_weighted_values(
        jnp.ones(4), jnp.zeros(4), reduction="mean_with_sample_weight"
    )
    assert float(zero_weights) == 0.0
    empty_mask = jnp.zeros(4, bool)
    assert float(reduce_weighted_values(jnp.ones(4), mask=empty_mask)) == 0.0


# ---------------------------------------------------------------------------------- schema


@pytest.mark.parametrize("alias", sorted(schema.LOSS_ALIASES))
def test_every_alias_is_a_keras_loss_string(alias: str):
    keras_obj = keras.losses.get(alias)
    model = ADAPTER.validate_python(alias)
    assert model.type == schema.LOSS_ALIASES[alias]
    keras_class = keras.losses.get(model.type)
    if isinstance(keras_obj, keras.losses.Loss):
        assert type(keras_obj) is type(keras_class)
    else:  # Keras's function alias: the class wraps that very function
        assert keras_class.fn is keras_obj


@pytest.mark.parametrize("name", sorted(schema.LOSS_TYPES))
def test_defaults_match_keras_signature(name: str):
    params = inspect.signature(getattr(keras.losses, name)).parameters
    fields = schema.LOSS_TYPES[name].model_fields
    for field, info in fields.items():
        if field == "type":
            continue
        assert field in params, f"{name}.{field} is not a Keras argument"
        assert info.default == params[field].default, f"{name}.{field}"
    skipped = {"name", "dtype", "reduction"} | set(fields)
    assert set(params) <= skipped, f"{name}: unmodelled Keras args {set(params) - skipped}"


def test_mapping_form_and_alias_in_mapping():
    model = ADAPTER.validate_python({"type": "SparseCategoricalCrossentropy", "from_logits": True})
    assert isinstance(model, schema.SparseCategoricalCrossentropy) and model.from_logits
    assert ADAPTER.validate_python({"type": "mse", "reduction": "sum"}).type == "MeanSquaredError"
    assert model.dump() == {"type": "SparseCategoricalCrossentropy", "from_logits": True}
    assert isinstance(build_loss(model), LossFn)
    assert build_loss("huber").name == "huber_loss"


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("sparse_categorical_crossentropyy", "sparse_categorical_crossentropy"),
        ("MeanSquareError", "MeanSquaredError"),
        ("Hubber", "Huber"),
        ("meansquarederror", "MeanSquaredError"),
    ],
)
def test_unknown_name_suggests_nearest(text: str, hint: str):
    with pytest.raises(ValueError, match=f"Did you mean '{hint}'\\?"):
        ADAPTER.validate_python(text)
    with pytest.raises(ValueError, match=f"Did you mean '{hint}'\\?"):
        ADAPTER.validate_python({"type": text})


def test_unknown_field_and_bad_values_fail():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ADAPTER.validate_python({"type": "Huber", "deltaa": 2.0})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "MeanSquaredError", "reduction": "none"})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "CategoricalCrossentropy", "label_smoothing": 1.5})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(3)


def test_string_form_is_in_json_schema():
    # (every field's description: tests/schema/test_vocabulary.py, for losses and metrics alike)
    string_form = ADAPTER.json_schema()
    assert "sparse_categorical_crossentropy" in str(string_form)


def test_schema_modules_do_not_import_jax(root):
    code = (
        "import sys; import modelspec.schema.losses, modelspec.schema.metrics; "
        "assert not {'jax', 'keras', 'flax'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_aliases_cover_all_classes():
    targets = set(schema.LOSS_ALIASES.values())
    assert targets == set(schema.LOSS_TYPES)
    assert all(a != b for a, b in itertools.pairwise(sorted(schema.LOSS_ALIASES)))
