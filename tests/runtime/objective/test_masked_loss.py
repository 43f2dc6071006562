"""Masked sequence outputs: loss and metrics equal Keras's `evaluate` and `compute_loss`.

A padded-sequence model (Embedding(mask_zero) -> recurrent layer with
return_sequences -> Dense per step) carries the mask to its output; Keras uses that
mask as sample weights of the loss (`sum_over_batch_size` then divides by the number
of unmasked steps) and of the MeanMetricWrapper metrics (accuracy), while
confusion-matrix metrics ignore it. Rows added to pad the last batch (row mask 0)
must not change any number either.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from modelspec.runtime.objective.objective import build_objective
from tests.keras_twin import copy_weights, keras_twin

TOKENS = np.array([[3, 1, 4, 1, 5, 9], [2, 6, 0, 0, 0, 0], [5, 3, 5, 8, 0, 0]], np.int32)
LABELS = np.array([[1, 0, 2, 3, 1, 0], [2, 2, 1, 1, 1, 1], [0, 3, 3, 2, 0, 0]], np.int32)


def spec(rnn: str, loss: dict, metrics: list) -> dict:
    return {
        "modelspec": 1,
        "name": "masked",
        "model": {
            "inputs": {"tokens": {"shape": [6], "dtype": "int32"}},
            "layers": [
                {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
                {"type": rnn, "units": 5, "return_sequences": True},
                {"type": "Dense", "units": 4},
            ],
        },
        "loss": loss,
        "metrics": metrics,
    }


SCE = {"type": "SparseCategoricalCrossentropy", "from_logits": True}


def ours_and_keras(spec_dict, padded_rows: int = 0):
    checked = load(spec_dict)
    state = split(CompiledModel(checked, seed=2))
    kmodel, klayers = keras_twin(checked.spec)
    copy_weights(state, klayers)
    objective = build_objective(checked)
    name = checked.graph.outputs[0]

    tokens, labels = TOKENS, LABELS
    row = np.ones(len(tokens), np.float32)
    if padded_rows:  # the runtime pads a short last batch with rows of mask 0
        tokens = np.concatenate([tokens, np.tile(TOKENS[:1], (padded_rows, 1))])
        labels = np.concatenate([labels, np.tile(LABELS[:1], (padded_rows, 1))])
        row = np.concatenate([row, np.zeros(padded_rows, np.float32)])
    (outputs, masks), _ = state.apply(
        {"tokens": jnp.asarray(tokens)}, training=False, return_masks=True
    )
    targets = {name: jnp.asarray(labels)}
    assert name in masks
    loss = objective.total_loss(outputs, targets, jnp.asarray(row), masks)
    metrics = objective.update_metrics(
        objective.init_metrics(), loss, outputs, targets, jnp.asarray(row), None, masks
    )
    ours = {k: float(np.mean(v)) for k, v in objective.results(metrics).items()}

    kmodel.compile(
        loss=_keras_loss(spec_dict["loss"]),
        metrics=[_keras_metric(m) for m in spec_dict["metrics"]],
    )
    theirs = kmodel.evaluate(TOKENS, LABELS, batch_size=len(TOKENS), verbose=0, return_dict=True)
    y_pred = kmodel(TOKENS)
    theirs["compute_loss"] = float(kmodel.compute_loss(TOKENS, LABELS, y_pred))
    return ours, theirs


def _keras_loss(loss: dict):
    import keras

    args = {k: v for k, v in loss.items() if k != "type"}
    return getattr(keras.losses, loss["type"])(**args)


def _keras_metric(metric):
    import keras

    if isinstance(metric, str):
        return metric
    args = {k: v for k, v in metric.items() if k != "type"}
    return getattr(keras.metrics, metric["type"])(**args)


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
@pytest.mark.parametrize("padded_rows", [0, 2])
def test_masked_sequence_loss_and_accuracy_match_keras(rnn, padded_rows):
    ours, theirs = ours_and_keras(spec(rnn, SCE, ["accuracy"]), padded_rows)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["loss"], theirs["compute_loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["accuracy"], theirs["accuracy"], rtol=1e-6)


def test_the_mask_changes_the_numbers():
    """Without the mask the mean would run over 18 steps instead of the 12 real ones."""
    ours, _ = ours_and_keras(spec("LSTM", SCE, ["accuracy"]))
    checked = load(spec("LSTM", SCE, ["accuracy"]))
    state = split(CompiledModel(checked, seed=2))
    outputs, _ = state.apply({"tokens": jnp.asarray(TOKENS)}, training=False)
    name = checked.graph.outputs[0]
    unmasked = build_objective(checked).total_loss(
        outputs, {name: jnp.asarray(LABELS)}, jnp.ones(3)
    )
    assert abs(float(unmasked) - ours["loss"]) > 1e-4


@pytest.mark.parametrize(
    "loss",
    [
        {**SCE, "reduction": "sum"},
        {**SCE, "ignore_class": 0},
        {"type": "SparseCategoricalCrossentropy", "reduction": "mean_with_sample_weight"},
    ],
    ids=["sum", "ignore_class", "mean_with_sample_weight"],
)
def test_reductions_with_mask_match_keras(loss):
    metrics = ["accuracy", {"type": "SparseCategoricalCrossentropy", "from_logits": True}]
    ours, theirs = ours_and_keras(spec("LSTM", loss, metrics))
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["loss"], theirs["compute_loss"], rtol=1e-5)
    for k in ("accuracy", "sparse_categorical_crossentropy"):
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-5, err_msg=k)
