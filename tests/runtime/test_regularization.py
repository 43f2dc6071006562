"""Weight and activity regularizers and weight constraints, against Keras 3.

- the training run: a model with L2 kernel regularizers, an activity regularizer and
  MaxNorm / UnitNorm constraints trains 3 SGD steps (the last batch padded) with the
  same losses, validation loss and weights as Keras's `fit` from the same initial weights;
- each regularizer and constraint against Keras's object on random arrays;
- `trainable: false` layers: no weight penalty and no constraint (as Keras, which reads
  `trainable_weights`), but their activity penalty still counts;
- positioned errors for bad arguments.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.penalties import build_penalties, constrain, regularize
from modelspec.errors import SpecError
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train
from modelspec.schema.regularizers import resolve
from tests.keras_twin import copy_weights, keras_twin

LAYERS = [
    {
        "name": "hidden",
        "type": "Dense",
        "units": 8,
        "activation": "tanh",
        "kernel_regularizer": {"type": "L2", "l2": 0.05},
        "bias_regularizer": "l1",
        "activity_regularizer": {"type": "L1L2", "l1": 0.01, "l2": 0.02},
        "kernel_constraint": {"type": "MaxNorm", "max_value": 0.6},
    },
    {
        "name": "out",
        "type": "Dense",
        "units": 2,
        "kernel_regularizer": "l2",
        "kernel_constraint": {"type": "UnitNorm", "axis": 0},
        "bias_constraint": "non_neg",
    },
]


def _spec(tmp_path, layers=LAYERS, **extra):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 5)).astype("float32"), rng.normal(size=(20, 2)).astype("float32")
    xv, yv = rng.normal(size=(12, 5)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "val.npz", x=xv, y=yv)
    spec = {
        "modelspec": 1,
        "name": "reg",
        "seed": 3,
        "data": {
            "train": {"type": "npz", "path": str(tmp_path / "train.npz")},
            "validation": {"type": "npz", "path": str(tmp_path / "val.npz")},
            "batch_size": 8,  # 20 samples: batches of 8, 8 and 4 (padded to 8 here)
            "shuffle": False,
        },
        "model": {"inputs": {"x": {"shape": [5]}}, "layers": layers},
        "loss": "mse",
        "optimizer": {"type": "SGD", "learning_rate": 0.3},
        "train": {"epochs": 1},
        **extra,
    }
    return spec, (x, y), (xv, yv)


def _keras_fit(spec, train_xy, val_xy):
    """Keras's fit from our initial weights: (history, layers)."""
    session = open_session(spec, data=False)
    model, layers = keras_twin(load(spec))
    copy_weights(session.state, layers)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.3), loss="mse")
    history = model.fit(
        *train_xy, batch_size=8, epochs=1, shuffle=False, validation_data=val_xy, verbose=0
    )
    return history.history, layers


def _our_weights(state):
    out = {}
    for coll in (state.params, state.frozen):
        for name, weights in coll.get("layers", {}).items():
            for w, value in weights.items():
                out[(name, w)] = np.asarray(value)
    return out


def test_training_matches_keras_fit(tmp_path):
    spec, train_xy, val_xy = _spec(tmp_path)
    ours = train(spec, tmp_path / "run", progress=False)
    theirs, layers = _keras_fit(spec, train_xy, val_xy)
    logs = ours.epochs[0]
    assert logs["step"] == 3
    np.testing.assert_allclose(logs["loss"], theirs["loss"][0], rtol=2e-5)
    np.testing.assert_allclose(logs["val_loss"], theirs["val_loss"][0], rtol=2e-5)
    assert 0 < logs["regularization_loss"] < logs["loss"]
    assert 0 < logs["val_regularization_loss"] < logs["val_loss"]
    for (layer, weight), value in _our_weights(ours.state).items():
        (kvar,) = [v for v in layers[layer].weights if v.path.endswith("/" + weight)]
        np.testing.assert_allclose(value, np.asarray(kvar.value), atol=2e-6, err_msg=weight)
    # the constraints hold after the last update
    kernel = _our_weights(ours.state)[("hidden", "kernel")]
    assert np.linalg.norm(kernel, axis=0).max() <= 0.6 + 1e-6
    out = _our_weights(ours.state)[("out", "kernel")]
    np.testing.assert_allclose(np.linalg.norm(out, axis=0), 1.0, rtol=1e-5)
    assert _our_weights(ours.state)[("out", "bias")].min() >= 0


def test_frozen_layer_has_no_weight_penalty_or_constraint_but_keeps_its_activity_penalty(
    tmp_path,
):
    frozen = [{**LAYERS[0], "trainable": False}, LAYERS[1]]
    spec, train_xy, val_xy = _spec(tmp_path, frozen)
    penalties = build_penalties(load(spec))
    paths = {p for p, _ in penalties.weights} | {p for p, _ in penalties.constraints}
    assert not any("hidden" in p for p in paths)
    assert [ref for ref, _ in penalties.activity] == ["hidden"]
    ours = train(spec, tmp_path / "run", progress=False)
    theirs, layers = _keras_fit(spec, train_xy, val_xy)
    np.testing.assert_allclose(ours.epochs[0]["loss"], theirs["loss"][0], rtol=2e-5)
    for (layer, weight), value in _our_weights(ours.state).items():
        (kvar,) = [v for v in layers[layer].weights if v.path.endswith("/" + weight)]
        np.testing.assert_allclose(value, np.asarray(kvar.value), atol=2e-6, err_msg=weight)


def test_no_regularization_loss_logged_without_penalties(tmp_path):
    plain = [{"type": "Dense", "units": 2, "kernel_constraint": "non_neg"}]
    spec, _, _ = _spec(tmp_path, plain)
    logs = train(spec, tmp_path / "run", progress=False).epochs[0]
    assert "regularization_loss" not in logs


REGULARIZERS = [
    ("l1", keras.regularizers.get("l1")),
    ("l2", keras.regularizers.get("l2")),
    ("l1l2", keras.regularizers.get("l1l2")),
    ("orthogonal_regularizer", keras.regularizers.get("orthogonal_regularizer")),
    ({"type": "L1", "l1": 0.3}, keras.regularizers.L1(0.3)),
    ({"type": "L2", "l2": 0.7}, keras.regularizers.L2(0.7)),
    ({"type": "L1L2", "l1": 0.2, "l2": 0.1}, keras.regularizers.L1L2(l1=0.2, l2=0.1)),
    ({"type": "L1L2", "l2": 0.1}, keras.regularizers.L1L2(l2=0.1)),
    (
        {"type": "OrthogonalRegularizer", "factor": 0.5, "mode": "columns"},
        keras.regularizers.OrthogonalRegularizer(factor=0.5, mode="columns"),
    ),
    (
        {"type": "OrthogonalRegularizer", "factor": 2.0},
        keras.regularizers.OrthogonalRegularizer(2.0),
    ),
]


@pytest.mark.parametrize("config,reference", REGULARIZERS, ids=lambda c: str(c)[:40])
def test_regularizer_matches_keras(config, reference):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    x[2] = 0.0  # a zero row: Keras's normalize keeps it at zero
    ours = regularize(resolve(config), x)
    theirs = reference(keras.ops.convert_to_tensor(x))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-7)


CONSTRAINTS = [
    ("max_norm", keras.constraints.get("max_norm")),
    ("min_max_norm", keras.constraints.get("min_max_norm")),
    ("non_neg", keras.constraints.get("non_neg")),
    ("unit_norm", keras.constraints.get("unit_norm")),
    ({"type": "MaxNorm", "max_value": 1.5, "axis": 1}, keras.constraints.MaxNorm(1.5, axis=1)),
    (
        {"type": "MaxNorm", "max_value": 1.0, "axis": [0, 1, 2]},
        keras.constraints.MaxNorm(1.0, axis=[0, 1, 2]),
    ),
    (
        {"type": "MinMaxNorm", "min_value": 1.0, "max_value": 2.0, "rate": 0.5},
        keras.constraints.MinMaxNorm(1.0, 2.0, rate=0.5),
    ),
    ({"type": "UnitNorm", "axis": -1}, keras.constraints.UnitNorm(axis=-1)),
]


@pytest.mark.parametrize("config,reference", CONSTRAINTS, ids=lambda c: str(c)[:40])
def test_constraint_matches_keras(config, reference):
    w = np.random.default_rng(0).normal(size=(3, 2, 4, 5)).astype("float32") * 2
    ours = constrain(resolve(config), w)
    theirs = reference(keras.ops.convert_to_tensor(w))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-7)


def _errors(tmp_path, layer: dict) -> str:
    path = tmp_path / "s.yaml"
    text = (
        "modelspec: 1\nname: e\nmodel:\n  inputs: {x: {shape: [4, 4, 3]}}\n  layers:\n"
        f"    - {layer}\n"
    )
    path.write_text(text.replace("'", ""))
    with pytest.raises(SpecError) as info:
        load(str(path))
    return str(info.value)


@pytest.mark.parametrize(
    "layer,expected",
    [
        (
            {"type": "Conv2D", "filters": 2, "kernel_size": 3, "kernel_regularizer": "l3"},
            ":6:70: model.layers[0].kernel_regularizer: unknown regularizer 'l3'. "
            "Received: kernel_regularizer='l3'. Valid values: 'L1', 'l1', 'L2'",
        ),
        (
            {"type": "Conv2D", "filters": 2, "kernel_size": 3, "bias_regularizer": "l1_l2"},
            "model.layers[0].bias_regularizer: unknown regularizer 'l1_l2'. "
            "Received: bias_regularizer='l1_l2'. Did you mean 'l1l2'?",
        ),
        (
            {"type": "Dense", "units": 2, "kernel_regularizer": {"type": "L2", "l2": -1}},
            ":6:66: model.layers[0].kernel_regularizer.l2: must be >= 0.0. Received: l2=-1. "
            "Valid values: l2 >= 0.",
        ),
        (
            {"type": "Dense", "units": 2, "kernel_constraint": {"type": "MaxNrm"}},
            "model.layers[0].kernel_constraint: unknown constraint type 'MaxNrm'. "
            "Received: kernel_constraint={type: 'MaxNrm'}. Did you mean 'MaxNorm'?",
        ),
        (
            {"type": "Dense", "units": 2, "activity_regularizer": "l22"},
            "model.layers[0].activity_regularizer: unknown regularizer 'l22'",
        ),
        (
            {
                "type": "Conv2D",
                "filters": 2,
                "kernel_size": 3,
                "kernel_regularizer": "orthogonal_regularizer",
            },
            "model.layers[0].kernel_regularizer: Conv2D 'conv2d' (input 'x' (None, 4, 4, 3)): "
            "OrthogonalRegularizer needs a rank-2 tensor, but its weight 'kernel' has shape "
            "(3, 3, 3, 2)",
        ),
        (
            {"type": "Dense", "units": 2, "kernel_constraint": {"type": "MaxNorm", "axis": 2}},
            "model.layers[0].kernel_constraint: Dense 'dense' (input 'x' (None, 4, 4, 3)): "
            "axis 2 is out of range for the weight 'kernel' of shape (3, 2). Received: axis=2.",
        ),
        (
            {
                "type": "Dense",
                "units": 2,
                "kernel_constraint": {"type": "MinMaxNorm", "min_value": 3},
            },
            "model.layers[0].kernel_constraint: min_value must not exceed max_value. "
            "Received: min_value=3.0, max_value=1.0",
        ),
        (
            {
                "type": "MultiHeadAttention",
                "num_heads": 2,
                "key_dim": 2,
                "activity_regularizer": "l2",
            },
            "model.layers[0].activity_regularizer: MultiHeadAttention 'multi_head_attention' "
            "(input 'x' (None, 4, 4, 3), 'x' (None, 4, 4, 3)): Keras's MultiHeadAttention applies "
            "activity_regularizer to its query, key, value and output projections",
        ),
        (  # every error names what was written (`Received:`) and a way out
            {
                "type": "MultiHeadAttention",
                "num_heads": 1,
                "key_dim": 2,
                "activity_regularizer": "l1",
            },
            "that is not supported. Received: activity_regularizer='l1'. Remove it, or put an "
            "ActivityRegularization layer after this one.",
        ),
    ],
)
def test_positioned_errors(tmp_path, layer, expected):
    assert expected in _errors(tmp_path, layer)


def test_nested_layer_penalties_are_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "modelspec: 1\nname: e\nmodel:\n  inputs: {x: {shape: [4, 3]}}\n  layers:\n"
        "    - type: Bidirectional\n"
        "      layer: {type: LSTM, units: 2, kernel_regularizer: l2}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    message = str(info.value)
    assert ":7:57: model.layers[0].layer.kernel_regularizer: Bidirectional" in message
    assert "regularizers and constraints of a nested layer are not supported yet" in message
