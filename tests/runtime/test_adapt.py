"""Adapted preprocessing end to end: Normalization without mean/variance learns them from
the training split before step 1 (equal to Keras's `adapt` on the same split), the
checkpoint holds them, `evaluate`/`predict` use them, and resume never re-adapts."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.runtime.checkpoint import Checkpointer
from modelspec.runtime.data.dataset import split_index
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train

SPEC = """\
name: adapt-e2e
seed: 3
data:
  train: {type: npz, path: d.npz}
  validation_split: 0.25
  split: last
  batch_size: 16
  shuffle: true
model:
  inputs: {x: {shape: [4]}}
  layers:
%s
    - {name: out, type: Dense, units: 3}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
train: {epochs: 2}
"""
NORM = "    - {name: norm, type: Normalization}"


def features(seed: int = 0, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Features on very different scales, labels from their sum."""
    rng = np.random.default_rng(seed)
    x = rng.normal([10.0, -5.0, 100.0, 0.0], [1.0, 4.0, 50.0, 0.1], (n, 4)).astype("float32")
    z = (x - x.mean(0)) / x.std(0)
    y = np.digitize(z.sum(1), [-1.0, 1.0]).astype("int64")
    return x, y


def write(tmp_path, layers: str = NORM, x=None, y=None):
    if x is None:
        x, y = features()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC % layers)
    return spec


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def latest_state(spec, run_dir):
    session = open_session(str(spec))
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=None, async_save=False)
    state, _ = ckpt.restore(ckpt.latest_step(), session.state)
    ckpt.close()
    return state


def keras_adapted(x: np.ndarray) -> keras.layers.Normalization:
    """Keras's Normalization adapted on the training split (Keras's validation cut)."""
    layer = keras.layers.Normalization()
    layer.adapt(x[: split_index(len(x), 0.25)])
    return layer


def test_adapted_normalization_trains_saves_resumes_and_predicts(tmp_path):
    spec, run = write(tmp_path), tmp_path / "run"
    first = cli("train", str(spec), "--run-dir", str(run), "--set", "train.epochs=1")
    assert first.exit_code == 0, first.output
    assert "Adapted Normalization 'norm' on 60 training samples" in first.stdout

    # the checkpoint holds Keras's adapted statistics of the training split
    x, _ = features()
    state = latest_state(spec, run)
    norm = state.frozen["layers"]["norm"]
    theirs = keras_adapted(x)
    np.testing.assert_array_equal(np.asarray(norm["mean"]), np.asarray(theirs.adapt_mean.value))
    np.testing.assert_array_equal(
        np.asarray(norm["variance"]), np.asarray(theirs.adapt_variance.value)
    )

    # evaluate reproduces the logged val_loss; predict applies the adapted state
    evaluated = cli("evaluate", str(spec), "--run-dir", str(run), "--set", "train.epochs=1")
    assert evaluated.exit_code == 0, evaluated.output
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert json.loads(evaluated.stdout)["loss"] == pytest.approx(last["val_loss"], rel=1e-6)
    np.savez(tmp_path / "in.npz", x=x[:7])
    predicted = cli(
        "predict", str(spec), "--run-dir", str(run), "--input", str(tmp_path / "in.npz"),
        "--output", str(tmp_path / "out.npz"), "--set", "train.epochs=1",
    )  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    dense = state.params["layers"]["out"]
    want = np.asarray(theirs(x[:7])) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["out"], want, rtol=1e-5, atol=1e-5)

    # a run stopped at step 3 (checkpoint at step 2) resumes on changed data: the
    # checkpoint's statistics stay, nothing is re-adapted, training goes on
    cut, every = tmp_path / "cut", "checkpoint.save_every_steps=2"
    train(str(spec), cut, [every], progress=False, max_steps=3)
    x3, y3 = features(seed=1)
    np.savez(tmp_path / "d.npz", x=x3 * 3.0, y=y3)
    resumed = cli("train", str(spec), "--run-dir", str(cut), "--set", every)
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming from step 2" in resumed.stdout and "Adapted" not in resumed.stdout
    final = latest_state(spec, cut)
    assert int(final.step) == 8  # 2 epochs of 4 batches
    np.testing.assert_array_equal(
        np.asarray(final.frozen["layers"]["norm"]["mean"]), np.asarray(norm["mean"])
    )


def test_adapts_through_weightless_layers_in_rounds(tmp_path):
    """Rescaling -> Normalization -> Discretization: the model computes each adapted
    layer's input in inference mode, Normalization first, and both equal Keras's."""
    layers = (
        "    - {name: scale, type: Rescaling, scale: 2.0, offset: 1.0}\n"
        "    - {name: norm, type: Normalization, axis: null}\n"
        "    - {name: bins, type: Discretization, num_bins: 4, output_mode: one_hot}\n"
        "    - {type: Flatten}"
    )
    spec = write(tmp_path, layers)
    history = train(str(spec), tmp_path / "run", progress=False)
    frozen = history.state.frozen["layers"]
    x, _ = features()
    rescaled = x[: split_index(len(x), 0.25)] * 2.0 + 1.0
    norm = keras.layers.Normalization(axis=None)
    norm.adapt(rescaled)
    np.testing.assert_array_equal(np.asarray(frozen["norm"]["mean"]), norm.adapt_mean.value)
    bins = keras.layers.Discretization(num_bins=4)
    bins.update_state(np.asarray(norm(rescaled)))
    bins.finalize_state()
    np.testing.assert_allclose(
        np.asarray(frozen["bins"]["bin_boundaries"]), bins.bin_boundaries, rtol=1e-6, atol=1e-6
    )


def test_an_adapted_layer_after_weights_is_refused_positioned(tmp_path):
    layers = "    - {name: hidden, type: Dense, units: 4}\n    - {name: norm, type: Normalization}"
    spec = write(tmp_path, layers)
    with pytest.raises(SpecError) as info:
        load(str(spec))
    (diag,) = info.value.diagnostics
    assert (diag.path, diag.line) == ("model.layers[1]", 13), diag.format()
    assert "'hidden' has weights" in diag.message and "mean and variance" in diag.hint


def test_too_few_values_to_adapt_is_a_positioned_error(tmp_path):
    layers = "    - {name: bins, type: Discretization, num_bins: 500, output_mode: one_hot}\n"
    layers += "    - {type: Flatten}"
    spec = write(tmp_path, layers)
    with pytest.raises(SpecError) as info:
        train(str(spec), tmp_path / "run", progress=False)
    (diag,) = info.value.diagnostics
    assert diag.path == "model.layers[0].num_bins" and diag.line == 12, diag.format()
    assert "gives 99 boundaries in Keras, not 499" in diag.message
