"""Metric specs and their functional JAX implementations against Keras 3 metric objects.

Every case runs 3 batches (the 2nd and 3rd with sample weights) through a jitted
`update`, then compares `result` with Keras's `update_state` x3 + `result()`.
"""

from __future__ import annotations

import inspect
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from modelspec.runtime.objective.metrics import Mean, MetricFn, build_metrics, resolve_accuracy
from modelspec.schema import losses as loss_schema
from modelspec.schema import metrics as schema

B, C = 16, 4
ATOL = RTOL = 1e-5
ADAPTER = TypeAdapter(schema.Metric)


def _batches(kind: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Three (y_true, y_pred, sample_weight) batches; batch 0 unweighted."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(3):
        logits = rng.normal(scale=2.0, size=(B, C)).astype("float32")
        probs = np.asarray(jax.nn.softmax(logits))
        sigm = np.asarray(jax.nn.sigmoid(logits))
        labels = rng.integers(0, C, size=(B,))
        sw = None if i == 0 else rng.uniform(0.0, 2.0, size=(B,)).astype("float32")
        if sw is not None:
            sw[0] = 0.0
        if kind == "sparse":
            y = (labels, probs)
        elif kind == "sparse_col":
            y = (labels[:, None], probs)
        elif kind == "sparse_logits":
            y = (labels, logits)
        elif kind == "categorical":
            y = (np.eye(C, dtype="float32")[labels], probs)
        elif kind == "categorical_logits":
            y = (np.eye(C, dtype="float32")[labels], logits)
        elif kind == "binary":
            y = (rng.integers(0, 2, size=(B, 1)).astype("float32"), sigm[:, :1])
        elif kind == "binary_flat":  # y_true (B,), y_pred (B, 1)
            y = (rng.integers(0, 2, size=(B,)), sigm[:, :1])
        elif kind == "binary_logits":
            y = (rng.integers(0, 2, size=(B, 1)).astype("float32"), logits[:, :1])
        elif kind == "multilabel":
            y = (rng.integers(0, 2, size=(B, C)).astype("float32"), sigm)
        elif kind == "multilabel_logits":
            y = (rng.integers(0, 2, size=(B, C)).astype("float32"), logits)
        elif kind == "regression":
            y = (rng.normal(size=(B, C)).astype("float32"), logits / 2)
        elif kind == "regression_col":
            y = (rng.normal(size=(B,)).astype("float32"), logits[:, :1])
        elif kind == "dist":
            y = (probs[::-1].copy(), probs)
        elif kind == "sorted_ids":
            y = (labels, np.argsort(-logits, axis=-1).astype("float32"))
        elif kind == "exact":
            y = (labels, rng.integers(0, C, size=(B,)))
        else:
            raise ValueError(kind)
        out.append((*y, sw))
    return out


def _keras(type_: str, kwargs: dict) -> keras.metrics.Metric:
    return getattr(keras.metrics, type_)(**kwargs)


# (type, kwargs (shared by the spec and the Keras constructor), data kind)
CASES = [
    ("Accuracy", {}, "exact"),
    ("BinaryAccuracy", {}, "binary"),
    ("BinaryAccuracy", {"threshold": 0.7}, "binary_flat"),
    ("BinaryAccuracy", {}, "multilabel"),
    ("CategoricalAccuracy", {}, "categorical"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_col"),
    ("TopKCategoricalAccuracy", {"k": 2}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse_col"),
    ("SparseTopKCategoricalAccuracy", {"k": 2, "from_sorted_ids": True}, "sorted_ids"),
    ("Precision", {}, "binary"),
    ("Precision", {}, "binary_flat"),
    ("Precision", {"thresholds": [0.3, 0.6]}, "multilabel"),
    ("Precision", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),
    ("Precision", {"top_k": 2}, "multilabel"),
    ("Precision", {"class_id": 1, "thresholds": 0.4}, "multilabel"),
    ("Recall", {}, "binary"),
    ("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "multilabel"),
    ("Recall", {"top_k": 1, "class_id": 2}, "categorical"),
    ("AUC", {}, "binary"),
    ("AUC", {}, "multilabel"),
    ("AUC", {"curve": "PR"}, "multilabel"),
    ("AUC", {"curve": "PR", "summation_method": "minoring"}, "binary"),
    ("AUC", {"summation_method": "majoring", "num_thresholds": 17}, "binary"),
    ("AUC", {"curve": "PRGAIN"}, "multilabel"),
    ("AUC", {"from_logits": True}, "binary_logits"),
    ("AUC", {"multi_label": True}, "multilabel"),
    ("AUC", {"multi_label": True, "curve": "PR", "label_weights": [1, 0, 2, 0.5]}, "multilabel"),
    ("AUC", {"multi_label": True, "num_labels": 4, "from_logits": True}, "multilabel_logits"),
    ("AUC", {"label_weights": [1.0, 2.0, 0.0, 0.5]}, "multilabel"),
    ("AUC", {"thresholds": [0.1, 0.4, 0.5, 0.9]}, "multilabel"),
    ("AUC", {"thresholds": [0.25, 0.5, 0.75], "curve": "PR"}, "binary"),
    ("F1Score", {}, "categorical"),
    ("F1Score", {"average": "micro"}, "categorical"),
    ("F1Score", {"average": "macro", "threshold": 0.5}, "multilabel"),
    ("F1Score", {"average": "weighted"}, "multilabel"),
    ("FBetaScore", {"beta": 2.0, "average": "macro"}, "categorical"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanSquaredError", {}, "regression_col"),
    ("MeanAbsoluteError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression_col"),
    ("R2Score", {}, "regression"),
    ("R2Score", {}, "regression_col"),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, "regression"),
    ("R2Score", {"class_aggregation": None}, "regression"),
    ("R2Score", {"num_regressors": 3}, "regression"),
    ("R2Score", {"num_regressors": 1000}, "regression"),
    ("BinaryCrossentropy", {}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "multilabel_logits"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "categorical"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical_logits"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": 1}, "sparse_logits"),
    ("KLDivergence", {}, "dist"),
    ("Hinge", {}, "multilabel_logits"),
    ("LogCoshError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
]


_IN_KERAS = {
    t for t, c in schema.METRIC_TYPES.items() if c.keras_class and c.keras_module == "keras.metrics"
}
"""Metric types whose Keras class is in `keras.metrics` (KerasHub's, e.g. Perplexity, are
not installed here; tests/runtime/objective/test_perplexity.py checks those by hand)."""


def _keras_default_name(type_: str) -> str:
    """A fresh Keras metric's name without the `_<n>` suffix Keras adds to repeats."""
    return re.sub(r"_\d+$", "", getattr(keras.metrics, type_)().name)


def _run_ours(metric: MetricFn, batches) -> np.ndarray:
    update = jax.jit(metric.update)
    state = metric.init()
    for y_true, y_pred, sw in batches:
        state = update(state, y_true, y_pred, sw)
    return np.asarray(metric.result(state))


def _run_keras(metric: keras.metrics.Metric, batches) -> np.ndarray:
    for y_true, y_pred, sw in batches:
        metric.update_state(y_true, y_pred, sample_weight=sw)
    return np.asarray(metric.result())


@pytest.mark.filterwarnings("ignore:More independent predictors:UserWarning")
@pytest.mark.parametrize(("type_", "kwargs", "kind"), CASES, ids=str)
def test_metric_matches_keras(type_: str, kwargs: dict, kind: str):
    batches = _batches(kind)
    y_shape = batches[0][1].shape
    (ours,) = build_metrics([{"type": type_, **kwargs}], None, y_pred_shape=y_shape)
    keras_metric = _keras(type_, kwargs)
    assert ours.name == re.sub(r"_\d+$", "", keras_metric.name)  # Keras adds _<n> to repeats
    expected = _run_keras(keras_metric, batches)
    got = _run_ours(ours, batches)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_sequence_accuracy_and_ce_with_padding_weights():
    """(B, T, C) outputs with (B, T) padding weights, as sequence models are trained."""
    rng = np.random.default_rng(7)
    batches = []
    for _ in range(3):
        logits = rng.normal(size=(B, 5, C)).astype("float32")
        labels = rng.integers(0, C, size=(B, 5))
        mask = (rng.uniform(size=(B, 5)) > 0.3).astype("float32")
        batches.append((labels, logits, mask))
    specs = [
        {"type": "SparseCategoricalAccuracy"},
        {"type": "SparseTopKCategoricalAccuracy", "k": 2},
        {"type": "SparseCategoricalCrossentropy", "from_logits": True, "ignore_class": 0},
    ]
    for spec, ours in zip(specs, build_metrics(specs, None), strict=True):
        keras_metric = _keras(spec["type"], {k: v for k, v in spec.items() if k != "type"})
        expected = _run_keras(keras_metric, batches)
        np.testing.assert_allclose(_run_ours(ours, batches), expected, rtol=RTOL, atol=ATOL)


def test_updates_run_inside_lax_scan():
    batches = _batches("multilabel")
    metrics = build_metrics(["auc", "precision", {"type": "F1Score"}], None, y_pred_shape=(B, C))
    y_true = jnp.stack([b[0] for b in batches[1:]])
    y_pred = jnp.stack([b[1] for b in batches[1:]])
    weights = jnp.stack([b[2] for b in batches[1:]])

    @jax.jit
    def run(states):
        def step(carry, batch):
            t, p, w = batch
            return [m.update(s, t, p, w) for m, s in zip(metrics, carry, strict=True)], None

        return jax.lax.scan(step, states, (y_true, y_pred, weights))[0]

    states = run([m.init() for m in metrics])
    for metric, state in zip(metrics, states, strict=True):
        keras_metric = keras.metrics.get(metric.name)
        if metric.name == "F1Score":
            keras_metric = keras.metrics.F1Score()
        expected = _run_keras(keras_metric, batches[1:])
        np.testing.assert_allclose(metric.result(state), expected, rtol=RTOL, atol=ATOL)


def test_loss_mean_tracker_weights_by_batch_size():
    tracker = Mean()
    keras_mean = keras.metrics.Mean(name="loss")
    state = tracker.init()
    for loss, size in ((2.0, 8), (1.0, 3), (0.5, 5)):
        state = jax.jit(tracker.update)(state, jnp.float32(loss), size)
        keras_mean.update_state(loss, sample_weight=size)
    assert tracker.name == "loss"
    np.testing.assert_allclose(tracker.result(state), keras_mean.result(), rtol=RTOL)
    assert float(tracker.result(tracker.init())) == 0.0


# -------------------------------------------------------------------- accuracy resolution


@pytest.mark.parametrize(
    ("loss", "shapes", "expected"),
    [
        ("sparse_categorical_crossentropy", None, "SparseCategoricalAccuracy"),
        ("categorical_crossentropy", None, "CategoricalAccuracy"),
        ({"type": "BinaryCrossentropy", "from_logits": True}, None, "BinaryAccuracy"),
        # Multi-label BCE: Keras 3's shape-only code would pick CategoricalAccuracy here.
        ("binary_crossentropy", ((None, 4), (None, 4)), "BinaryAccuracy"),
        ("mse", ((None, 1), (None, 1)), "BinaryAccuracy"),
        ("hinge", ((None,), (None, 10)), "SparseCategoricalAccuracy"),
        ("hinge", ((None, 1), (None, 10)), "SparseCategoricalAccuracy"),
        ("mse", ((None, 10), (None, 10)), "CategoricalAccuracy"),
    ],
)
def test_accuracy_resolves_like_keras(loss, shapes, expected):
    y_true_shape, y_pred_shape = shapes or (None, None)
    for text in ("accuracy", "acc", "Accuracy"):
        (metric,) = build_metrics(
            [text], loss, y_true_shape=y_true_shape, y_pred_shape=y_pred_shape
        )
        assert metric.name == text
    loss_spec = TypeAdapter(loss_schema.Loss).validate_python(loss)
    assert resolve_accuracy(loss_spec, y_true_shape, y_pred_shape) == expected


def test_accuracy_shape_rule_is_keras_compile_utils():
    from keras.src.trainers.compile_utils import get_metric

    for y_true_shape, y_pred_shape in (((3,), (3, 4)), ((3, 1), (3, 1)), ((3, 4), (3, 4))):
        keras_metric = get_metric("accuracy", np.zeros(y_true_shape), np.zeros(y_pred_shape))
        ours = resolve_accuracy(None, y_true_shape, y_pred_shape)
        assert type(keras_metric).__name__ == ours


def test_resolved_accuracy_numbers_match():
    batches = _batches("sparse")
    (metric,) = build_metrics(["accuracy"], "sparse_categorical_crossentropy")
    expected = _run_keras(keras.metrics.SparseCategoricalAccuracy(), batches)
    np.testing.assert_allclose(_run_ours(metric, batches), expected, atol=ATOL)


def test_metric_shape_mismatch_raises_like_keras():
    (metric,) = build_metrics(["binary_crossentropy"], None)
    with pytest.raises(ValueError, match="same shape"):
        metric.update(metric.init(), np.zeros((B,)), np.full((B, 1), 0.5, "float32"))


def test_build_errors():
    with pytest.raises(ValueError, match="output shapes"):
        build_metrics(["accuracy"], "mse")
    with pytest.raises(ValueError, match="number of classes"):
        build_metrics([{"type": "F1Score"}], None)
    with pytest.raises(ValueError, match="R2Score needs"):
        build_metrics(["r2_score"], None)
    with pytest.raises(ValueError, match="multi_label"):
        build_metrics([{"type": "AUC", "multi_label": True}], None)
    with pytest.raises(ValueError, match="Duplicate metric names"):
        build_metrics(["mse", {"type": "MeanAbsoluteError", "name": "mse"}], None)
    assert [m.name for m in build_metrics([{"type": "F1Score", "average": "micro"}], None)] == [
        "f1_score"
    ]


# --------------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    "alias",
    sorted(
        a
        for a, t in schema.METRIC_ALIASES.items()
        if a.lower() not in ("accuracy", "acc") and t in _IN_KERAS
    ),
)
def test_every_alias_is_a_keras_metric_string(alias: str):
    keras_obj = keras.metrics.get(alias)
    model = ADAPTER.validate_python(alias)
    assert type(keras_obj).__name__ == model.type
    assert model.name == alias  # Keras logs a string metric under the string itself


def test_mapping_form_uses_keras_default_names():
    for type_, cls in schema.METRIC_TYPES.items():
        if type_ not in _IN_KERAS:
            continue
        model = ADAPTER.validate_python({"type": type_})
        assert isinstance(model, cls)
        assert model.name == _keras_default_name(type_)
    custom = ADAPTER.validate_python({"type": "Precision", "thresholds": 0.3, "name": "p30"})
    assert custom.name == "p30" and custom.thresholds == 0.3
    assert ADAPTER.validate_python({"type": "auc", "curve": "pr"}).curve == "PR"
    exact = ADAPTER.validate_python({"type": "Accuracy"})
    assert isinstance(exact, schema.Accuracy)
    assert isinstance(ADAPTER.validate_python("Accuracy"), schema.InferredAccuracy)


@pytest.mark.parametrize("type_", sorted(_IN_KERAS))
def test_defaults_match_keras_signature(type_: str):
    params = inspect.signature(getattr(keras.metrics, type_)).parameters
    for field, info in schema.METRIC_TYPES[type_].model_fields.items():
        if field == "type":
            continue
        assert field in params, f"{type_}.{field} is not a Keras argument"
        default = params[field].default
        if field == "name" and default is None:  # Keras auto-names from the class
            default = _keras_default_name(type_)
        assert info.default == default, f"{type_}.{field}"


@pytest.mark.parametrize(
    ("text", "hint"),
    [("presicion", "precision"), ("AUc", "auc"), ("f1score", "F1Score"), ("logcosh", "log_cosh")],
)
def test_unknown_name_suggests_nearest(text: str, hint: str):
    with pytest.raises(ValueError, match="Did you mean '" + hint):
        ADAPTER.validate_python(text)
    with pytest.raises(ValueError, match="Did you mean"):
        ADAPTER.validate_python({"type": text})


def test_unsupported_keras_metric_and_bad_fields_fail():
    with pytest.raises(ValueError, match="not supported by modelspec"):
        ADAPTER.validate_python("MeanIoU")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ADAPTER.validate_python({"type": "Precision", "threshold": 0.5})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "F1Score", "average": "mean"})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "AUC", "num_labels": 3})
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "Recall", "thresholds": [0.5, 1.5]})


def test_string_form_is_in_json_schema():
    # (every field's description: tests/schema/test_vocabulary.py, for losses and metrics alike)
    assert "sparse_top_k_categorical_accuracy" in str(ADAPTER.json_schema())
