"""Must-show: a padded-sequence model — Embedding(mask_zero) -> Bidirectional(LSTM) ->
Dense — gives Keras's outputs and loss on a batch of different lengths, and trains.

The Keras twin gets the same weights; its `compute_loss` and `evaluate` are the oracle
for the loss. The end-to-end run goes through `modelspec train` on a tiny `.npz` of
zero-padded id sequences (lengths 0 to 8): with one batch per epoch, the first epoch's
loss is the loss of the initial weights, which must be Keras's on the same batch.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from modelspec.runtime.objective.objective import build_objective
from tests.keras_twin import copy_weights, keras_twin

TOKENS = np.array(
    [[3, 1, 4, 1, 5, 9], [2, 6, 0, 0, 0, 0], [5, 3, 5, 8, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32
)
"""Padded id sequences of lengths 6, 2, 4 and 0."""

HEADS = {
    "sigmoid": (
        {"type": "Dense", "units": 1, "activation": "sigmoid"},
        {"type": "BinaryCrossentropy"},
        np.array([[1.0], [0.0], [1.0], [0.0]], np.float32),
    ),
    "softmax": (
        {"type": "Dense", "units": 3, "activation": "softmax"},
        {"type": "SparseCategoricalCrossentropy"},
        np.array([2, 0, 1, 1], np.int32),
    ),
}


def padded_bilstm(head: dict, loss: dict, mask_zero: bool = True) -> dict:
    return {
        "modelspec": 1,
        "name": "padded-bilstm",
        "model": {
            "inputs": {"tokens": {"shape": [6], "dtype": "int32"}},
            "layers": [
                {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": mask_zero},
                {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 5}},
                head,
            ],
        },
        "loss": loss,
    }


def _keras_loss(loss: dict):
    return getattr(keras.losses, loss["type"])(**{k: v for k, v in loss.items() if k != "type"})


def ours_and_keras(spec_dict: dict, labels: np.ndarray):
    """(our outputs, our loss, Keras's outputs, its compute_loss, its evaluate loss)
    with the same random weights (biases too, so an empty row is not all zeros)."""
    checked = load(spec_dict)
    state = split(CompiledModel(checked, seed=5))
    rng = np.random.default_rng(5)
    for layer in state.params["layers"].values():
        for path in list(_leaves(layer)):
            *parents, leaf = path
            node = layer
            for p in parents:
                node = node[p]
            node[leaf] = jnp.asarray(rng.normal(0, 0.5, node[leaf].shape).astype(np.float32))
    kmodel, klayers = keras_twin(checked.spec)
    copy_weights(state, klayers)
    name = checked.graph.outputs[0]
    (outputs, masks), _ = state.apply(
        {"tokens": jnp.asarray(TOKENS)}, training=False, return_masks=True
    )
    assert masks == {}  # the LSTM returns the last step only: the output has no mask
    loss = build_objective(checked).total_loss(
        outputs, {name: jnp.asarray(labels)}, jnp.ones(len(TOKENS)), masks
    )
    kmodel.compile(loss=_keras_loss(spec_dict["loss"]))
    y_pred = kmodel(TOKENS)
    computed = float(kmodel.compute_loss(TOKENS, labels, y_pred))
    evaluated = kmodel.evaluate(TOKENS, labels, batch_size=len(TOKENS), verbose=0)
    return np.asarray(outputs[name]), float(loss), np.asarray(y_pred), computed, evaluated


def _leaves(tree, prefix=()):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_padded_bidirectional_lstm_outputs_and_loss_match_keras(head):
    dense, loss, labels = HEADS[head]
    ours, our_loss, theirs, computed, evaluated = ours_and_keras(padded_bilstm(dense, loss), labels)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(our_loss, computed, rtol=1e-5)
    np.testing.assert_allclose(our_loss, evaluated, rtol=1e-5)
    # The mask matters: without it the padded steps feed both directions.
    unmasked, unmasked_loss, *_ = ours_and_keras(padded_bilstm(dense, loss, False), labels)
    assert np.abs(unmasked[:3] - ours[:3]).max() > 1e-3
    assert abs(unmasked_loss - our_loss) > 1e-4


TRAIN_SPEC = """\
modelspec: 1
name: padded-bilstm
seed: 0
data:
  train: {type: npz, path: d.npz}
  batch_size: 64
model:
  inputs: {tokens: {shape: [8], dtype: int32}}
  layers:
    - {type: Embedding, input_dim: 10, output_dim: 8, mask_zero: true}
    - {type: Bidirectional, layer: {type: LSTM, units: 8}}
    - {type: Dense, units: 1, activation: sigmoid}
loss: {type: BinaryCrossentropy}
metrics: [accuracy]
optimizer: {type: Adam, learning_rate: 0.05}
train: {epochs: 15, callbacks: []}
"""


def padded_task(n: int = 64, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded id sequences of lengths 0..steps; the label: does id 7 occur?"""
    rng = np.random.default_rng(0)
    tokens = np.zeros((n, steps), np.int32)
    for i, length in enumerate(rng.integers(0, steps + 1, n)):
        tokens[i, :length] = rng.integers(1, 10, length)
    labels = (tokens == 7).any(axis=1).astype(np.float32)[:, None]
    return tokens, labels


def test_train_padded_sequences_from_keras_first_loss(tmp_path):
    from modelspec.runtime.session import open_session
    from modelspec.runtime.trainer import train

    tokens, labels = padded_task()
    assert 0.25 < labels.mean() < 0.75 and (tokens == 0).all(axis=1).any()
    np.savez(tmp_path / "d.npz", tokens=tokens, y=labels)
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(TRAIN_SPEC)

    history = train(str(spec_path), tmp_path / "run", progress=False)
    records = [
        json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    ]
    assert len(history.epochs) == len(records) == 15
    first, last = history.epochs[0], history.epochs[-1]

    # One batch per epoch: epoch 1's loss is that of the initial weights.
    session = open_session(str(spec_path), data=False)
    kmodel, klayers = keras_twin(session.spec.spec)
    copy_weights(session.state, klayers)
    kmodel.compile(loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
    keras_first = kmodel.evaluate(tokens, labels, batch_size=64, verbose=0, return_dict=True)
    assert first["loss"] == pytest.approx(keras_first["loss"], rel=1e-5)
    assert first["accuracy"] == pytest.approx(keras_first["accuracy"], abs=1e-6)

    assert last["loss"] < 0.5 * first["loss"], (first, last)  # it learns the task
    assert last["accuracy"] >= 0.9, last
