"""Keras-built models saved by Keras -> `modelspec import` -> `modelspec predict` equals
Keras's predict; code in an archive (Lambda) is refused without running it; every
unsupported layer or argument is listed in one error."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from keras import layers
from typer.testing import CliRunner

from modelspec.cli import app

RUNNER = CliRunner()


def _mlp():
    return keras.Sequential(
        [
            keras.Input((6,)),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(3, activation="softmax"),
        ]
    )


def _cnn_bn():
    x = keras.Input((10, 10, 3), name="image")
    y = layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.MaxPooling2D()(y)
    y = layers.Conv2D(6, 3, strides=2, activation="gelu")(y)
    y = layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, layers.Dense(2)(y))


def _multi_io():
    a = keras.Input((5,), name="a")
    b = keras.Input((4, 3), name="b")
    pa = layers.Dense(4, name="proj_a")(a)
    pb = layers.Flatten()(layers.Conv1D(2, 2, name="conv_b")(b))
    merged = layers.Concatenate()([pa, pb])
    out1 = layers.Dense(1, name="score")(merged)
    out2 = layers.Dense(3, activation="softmax", name="klass")(
        layers.Add()([pa, layers.Dense(4)(merged)])
    )
    return keras.Model([a, b], [out1, out2])


def _lstm():
    x = keras.Input((7, 3))
    y = layers.LSTM(5, return_sequences=True)(x)
    y = layers.Bidirectional(layers.GRU(4))(y)
    return keras.Model(x, layers.Dense(2)(y))


def _nested():
    inner = keras.Sequential([layers.Dense(6, activation="tanh"), layers.Dense(4)], name="tower")
    x = keras.Input((5,), name="x")
    y = inner(layers.LayerNormalization()(x))
    return keras.Model(x, layers.Dense(1)(y))


MODELS = {"mlp": _mlp, "cnn_bn": _cnn_bn, "multi_io": _multi_io, "lstm": _lstm, "nested": _nested}


def _randomize(model: keras.Model, rng) -> None:
    for w in model.weights:  # nonzero biases and statistics: each weight matters
        value = np.asarray(w.value) + rng.normal(size=w.shape).astype("float32") * 0.2
        w.assign(np.abs(value) + 0.5 if "variance" in w.path else value)


@pytest.mark.parametrize("name", list(MODELS))
def test_import_then_predict_equals_keras(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = MODELS[name]()
    _randomize(model, rng)
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.keras")
    spec, run = tmp_path / "spec.yaml", tmp_path / "run"
    done = RUNNER.invoke(
        app, ["import", str(tmp_path / "m.keras"), "-o", str(spec), "--run-dir", str(run)]
    )
    assert done.exit_code == 0, done.output
    written = yaml.safe_load(spec.read_text())
    assert written["loss"] == "mse" and written["optimizer"]["type"] == "Adam"
    xs = [rng.normal(size=(4, *i.shape[1:])).astype("float32") for i in model.inputs]
    np.savez(tmp_path / "in.npz", **dict(zip(written["model"]["inputs"], xs, strict=True)))
    done = RUNNER.invoke(
        app,
        [
            "predict",
            str(spec),
            "--run-dir",
            str(run),
            "--input",
            str(tmp_path / "in.npz"),
            "--output",
            str(tmp_path / "out.npz"),
        ],
    )
    assert done.exit_code == 0, done.output
    got = np.load(tmp_path / "out.npz")
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    want = want if isinstance(want, list | tuple) else [want]
    outputs = written["model"].get("outputs") or [written["model"]["layers"][-1]["name"]]
    for out, w in zip(outputs, want, strict=True):
        np.testing.assert_allclose(got[out], np.asarray(w), atol=1e-5, rtol=1e-5, err_msg=out)


def test_lambda_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"

    def body(t, path=str(marker)):
        open(path, "w").write("executed")  # noqa: SIM115 - the side effect under test
        return t * 2

    x = keras.Input((3,))
    model = keras.Model(x, layers.Dense(2)(layers.Lambda(body, name="doubler")(x)))
    model.save(tmp_path / "lam.keras")
    marker.unlink()  # Keras ran the body once while building the model
    done = RUNNER.invoke(
        app, ["import", str(tmp_path / "lam.keras"), "-o", str(tmp_path / "s.yaml")]
    )
    assert done.exit_code == 2
    assert "'doubler' is a Lambda layer" in done.output
    assert "nothing from the archive was executed" in done.output
    assert not marker.exists()
    assert not (tmp_path / "s.yaml").exists()


def test_unsupported_parts_listed_at_once(tmp_path: Path) -> None:
    x = keras.Input((8, 8, 3))
    a = layers.RandomGrayscale(name="gray")(x)
    b = layers.Conv2D(2, 3, data_format="channels_first", name="cf_conv")(x)
    c = layers.Solarization(name="sol")(x)
    y = layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b), layers.Flatten()(c)])
    keras.Model(x, layers.Dense(1)(y)).save(tmp_path / "bad.keras")
    done = RUNNER.invoke(
        app, ["import", str(tmp_path / "bad.keras"), "-o", str(tmp_path / "s.yaml")]
    )
    assert done.exit_code == 2
    for part in ("'gray'", "RandomGrayscale", "'cf_conv'", "data_format", "'sol'", "Solarization"):
        assert part in done.output, done.output
    assert "3 errors" in done.output
