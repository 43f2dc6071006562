"""`Perplexity` (keras_hub.metrics.Perplexity) against hand computations, KerasHub's own
documented example, and exp(Keras's SparseCategoricalCrossentropy metric) over the same
batches (keras_hub is not installed here)."""

from __future__ import annotations

import jax
import keras
import numpy as np
import pytest
from pydantic import TypeAdapter

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.runtime.objective.metrics import build_metrics
from modelspec.runtime.objective.objective import build_objective
from modelspec.schema import metrics as schema

ADAPTER = TypeAdapter(schema.Metric)


def perplexity(batches, shape=(None, 5, 7), **args):
    """Our metric's result after updating it with `batches` of (y_true, y_pred[, w])."""
    (metric,) = build_metrics([{"type": "Perplexity", **args}], None, y_pred_shape=shape)
    update, state = jax.jit(metric.update), metric.init()
    for batch in batches:
        state = update(state, *batch)
    return float(metric.result(state))


def token_ce(y, logits):
    """-log softmax(logits)[y], per token, in float64."""
    z = logits.astype(np.float64)
    log_z = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    return log_z - np.take_along_axis(z, y[..., None], -1)[..., 0]


def batches(sizes=(3, 2), t=5, v=7, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, v, (b, t)), rng.normal(size=(b, t, v)).astype(np.float32)) for b in sizes
    ]


def test_from_logits_is_exp_of_the_mean_token_crossentropy():
    data = batches()
    ce = np.concatenate([token_ce(y, p).reshape(-1) for y, p in data])
    assert perplexity(data, from_logits=True) == pytest.approx(np.exp(ce.mean()), rel=1e-5)


def test_probabilities_are_normalized_like_keras():
    data = [(y, np.exp(p) * 3.0) for y, p in batches()]  # unnormalized probabilities
    ce = np.concatenate([token_ce(y, np.log(p)).reshape(-1) for y, p in data])
    assert perplexity(data) == pytest.approx(np.exp(ce.mean()), rel=1e-5)


def test_kerashub_documented_example():
    """keras_hub.metrics.Perplexity's docstring: 14.352535 (probabilities given)."""
    np.random.seed(42)
    target = np.random.randint(10, size=[2, 5])
    logits = np.random.uniform(size=(2, 5, 10))
    assert perplexity([(target, logits)], shape=(None, 5, 10)) == pytest.approx(14.352535)
    masked = perplexity([(target, logits)], shape=(None, 5, 10), mask_token_id=0)
    assert masked == pytest.approx(14.352535)  # no target is 0 there


def test_mask_token_id_averages_each_batch_over_its_unmasked_tokens():
    data = batches(sizes=(4, 2, 3), v=5, seed=3)
    expected_total, rows = 0.0, 0
    for y, p in data:  # KerasHub: a batch's mean over unmasked tokens, times its size
        keep = y != 0
        expected_total += len(y) * token_ce(y, p)[keep].sum() / keep.sum()
        rows += len(y)
    got = perplexity(data, shape=(None, 5, 5), from_logits=True, mask_token_id=0)
    assert got == pytest.approx(np.exp(expected_total / rows), rel=1e-5)
    plain = np.concatenate([token_ce(y, p).reshape(-1) for y, p in data])
    assert got != pytest.approx(np.exp(plain.mean()), rel=1e-3)  # the mask matters


def test_padded_rows_count_like_keras_smaller_last_batch():
    """The trainer pads the last batch by repeating rows with weight 0: the result must
    equal the unpadded batches'."""
    data = batches(sizes=(4, 2), seed=5)
    y, p = data[1]
    padded = (np.concatenate([y, y]), np.concatenate([p, p]), np.array([1, 1, 0, 0], np.float32))
    full = (*data[0], np.ones(4, np.float32))
    for args in ({"from_logits": True}, {"from_logits": True, "mask_token_id": 2}):
        assert perplexity([full, padded], **args) == pytest.approx(
            perplexity(data, **args), rel=1e-6
        )


@pytest.mark.parametrize("from_logits", [True, False])
def test_equals_exp_of_keras_sparse_categorical_crossentropy(from_logits):
    data = batches(sizes=(8, 8, 3), t=6, v=11, seed=7)
    if not from_logits:
        data = [(y, np.asarray(jax.nn.softmax(p, axis=-1))) for y, p in data]
    ref = keras.metrics.SparseCategoricalCrossentropy(from_logits=from_logits)
    for y, p in data:
        ref.update_state(y, p)
    got = perplexity(data, shape=(None, 6, 11), from_logits=from_logits)
    assert got == pytest.approx(float(np.exp(ref.result())), rel=1e-5)


def test_zero_before_any_update_and_reset_by_init():
    assert perplexity([]) == 0.0


def test_schema_names_and_defaults():
    by_string = ADAPTER.validate_python("perplexity")
    assert isinstance(by_string, schema.Perplexity) and by_string.name == "perplexity"
    mapped = ADAPTER.validate_python({"type": "Perplexity", "mask_token_id": 0})
    assert (mapped.name, mapped.from_logits, mapped.mask_token_id) == ("perplexity", False, 0)
    assert schema.Perplexity.keras_module == "keras_hub.metrics"


def test_predictions_must_be_batch_steps_vocabulary():
    with pytest.raises(ValueError, match=r"\(batch, steps, vocabulary\).*\[None, 10\]"):
        build_metrics(["perplexity"], None, y_pred_shape=(None, 10))


def test_positioned_error_for_a_classifier_output(tmp_path):
    file = tmp_path / "spec.yaml"
    file.write_text(
        "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: Dense, units: 3}\n"
        "loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n"
        "metrics:\n  - {type: Perplexity, from_logits: true}\n"
    )
    with pytest.raises(SpecError) as info:
        build_objective(load(file))
    (d,) = info.value.diagnostics
    assert (d.path, d.line) == ("metrics", 7) and "Perplexity takes token predictions" in d.message
