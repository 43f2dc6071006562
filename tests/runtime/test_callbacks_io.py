"""ModelCheckpoint, CSVLogger, LearningRateScheduler and `verbose` (issue #12), against
Keras's own callbacks where the comparison is direct: CSVLogger's file for the same
logs, LearningRateScheduler's learning rates in a real `fit`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.runtime.callbacks import CSVLoggerCallback, build_callbacks
from modelspec.runtime.trainer import train
from modelspec.schema.callbacks import CALLBACK_TYPES, CSVLogger

HEAD = """\
name: cb
seed: 0
data:
  train: {type: npz, path: d.npz}
  validation_split: 0.25
  batch_size: 16
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {name: h, type: Dense, units: 8, activation: relu}
    - {name: y, type: Dense, units: 2}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
metrics: [accuracy]
optimizer: {type: SGD, learning_rate: 0.1}
"""


def project(tmp_path: Path, train_section: str) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype("int32"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + textwrap.dedent(train_section))
    return spec


def keras_csv(tmp_path: Path, logs: list[dict], **kwargs) -> str:
    import keras

    path = tmp_path / "keras.csv"
    cb = keras.callbacks.CSVLogger(str(path), **kwargs)
    cb.on_train_begin()
    for epoch, row in enumerate(logs):
        cb.on_epoch_end(epoch, dict(row))
    cb.on_train_end()
    return path.read_text()


LOGS = [
    {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "learning_rate": 0.1},
    {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.5, "learning_rate": 0.05},
]


@pytest.mark.parametrize(
    "logs,kwargs",
    [(LOGS, {}), (LOGS, {"separator": ";"}), ([{"loss": 1.5, "mae": 0.5}] * 2, {})],
    ids=["validation", "separator", "no_validation_keys"],
)
def test_csv_logger_writes_what_keras_writes(tmp_path, logs, kwargs):
    spec = CSVLogger(type="CSVLogger", filename="sub/log.csv", **kwargs)
    ours = CSVLoggerCallback(spec, base_lr=0.1, run_dir=tmp_path)
    ours.on_train_begin(resumed=False)
    for epoch, row in enumerate(logs):
        ours.on_epoch_end(epoch, dict(row))
    assert (tmp_path / "sub" / "log.csv").read_text() == keras_csv(tmp_path, logs, **kwargs)


def test_csv_logger_append_and_resume(tmp_path):
    target = tmp_path / "log.csv"
    target.write_text("")  # empty: Keras writes the header even when appending
    ours = CSVLoggerCallback(
        CSVLogger(type="CSVLogger", filename="log.csv", append=True),
        base_lr=0.1,
        run_dir=tmp_path,
    )
    ours.on_train_begin(resumed=False)
    ours.on_epoch_end(0, LOGS[0])
    saved = dict(ours.state)  # what a checkpoint after epoch 1 holds
    ours.on_epoch_end(1, LOGS[1])  # written, then the run is killed before a checkpoint
    ours.state = saved
    ours.on_train_begin(resumed=True)  # the rerun cuts the replayed epoch's row
    ours.on_epoch_end(1, LOGS[1])
    expected = keras_csv(tmp_path, LOGS)
    assert target.read_text() == expected
    again = CSVLoggerCallback(
        CSVLogger(type="CSVLogger", filename="log.csv", append=True),
        base_lr=0.1,
        run_dir=tmp_path,
    )
    again.on_train_begin(resumed=False)  # a new run appending: no second header
    again.on_epoch_end(0, LOGS[0])
    assert target.read_text() == expected + expected.splitlines(keepends=True)[1]


def test_learning_rate_scheduler_matches_keras_fit(tmp_path):
    import keras

    schedule = {
        "type": "ExponentialDecay",
        "initial_learning_rate": 0.1,
        "decay_steps": 2,
        "decay_rate": 0.5,
    }
    spec = project(
        tmp_path,
        f"train:\n  epochs: 5\n  callbacks:\n"
        f"    - {{type: LearningRateScheduler, schedule: {json.dumps(schedule)}}}\n",
    )
    history = train(spec, tmp_path / "run", progress=False)
    ours = [row["learning_rate"] for row in history.epochs]

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    kschedule = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    fit = model.fit(
        np.zeros((8, 4)),
        np.zeros((8, 2)),
        epochs=5,
        verbose=0,
        # Keras wants a float from the function, so its users wrap the schedule like this
        callbacks=[keras.callbacks.LearningRateScheduler(lambda e: float(kschedule(e)))],
    )
    np.testing.assert_allclose(ours, fit.history["learning_rate"], rtol=1e-6)


def test_model_checkpoint_keeps_the_best_epoch_for_predict_evaluate_export(tmp_path, capsys):
    spec = project(
        tmp_path,
        """\
        train:
          epochs: 4
          callbacks:
            - {type: ModelCheckpoint, monitor: val_loss, save_best_only: true, verbose: 1}
        """,
    )
    run = tmp_path / "run"
    history = train(spec, run, progress=True, tty=False)
    out = capsys.readouterr().out
    losses = [row["val_loss"] for row in history.epochs]
    best_epoch = int(np.argmin(losses))
    best_step = history.epochs[best_epoch]["step"]
    assert "Epoch 1: val_loss improved from None to" in out
    assert [int(p.name) for p in (run / "best").iterdir() if p.name.isdigit()] == [best_step]
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(spec), "--run-dir", str(run), "--best"])
    assert result.exit_code == 0, result.output
    assert f"Using best checkpoint step {best_step} of {run}" in result.stderr
    assert json.loads(result.stdout)["loss"] == pytest.approx(losses[best_epoch], rel=1e-5)
    newest = runner.invoke(app, ["evaluate", str(spec), "--run-dir", str(run)])
    assert f"Evaluating checkpoint step {history.epochs[-1]['step']} on the validation " in (
        newest.stderr
    )
    np.savez(tmp_path / "x.npz", x=np.ones((3, 4), "float32"))
    pred = runner.invoke(
        app,
        ["predict", str(spec), "--run-dir", str(run), "--best", "--input",
         str(tmp_path / "x.npz"), "--output", str(tmp_path / "p.npz")],
    )  # fmt: skip
    assert pred.exit_code == 0 and f"best checkpoint step {best_step}" in pred.stderr


def test_best_without_a_best_checkpoint_is_a_clear_error(tmp_path):
    spec = project(tmp_path, "train: {epochs: 1}\n")
    train(spec, tmp_path / "run", progress=False)
    result = CliRunner().invoke(
        app, ["evaluate", str(spec), "--run-dir", str(tmp_path / "run"), "--best"]
    )
    assert result.exit_code == 2
    assert "--best: no best checkpoint in this run directory" in result.stderr


def test_model_checkpoint_without_save_best_only_checkpoints_every_epoch(tmp_path):
    spec = project(
        tmp_path,
        "train:\n  epochs: 3\n  callbacks: [{type: ModelCheckpoint, monitor: loss}]\n"
        "checkpoint: {save_at_epoch_end: false, max_to_keep: null}\n",
    )
    run = tmp_path / "run"
    train(spec, run, progress=False)
    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [3, 6, 9]


def test_verbose_is_accepted_on_every_callback():
    required = {"ModelCheckpoint": {}, "CSVLogger": {"filename": "a.csv"}}
    required["LearningRateScheduler"] = {
        "schedule": {"type": "ExponentialDecay", "initial_learning_rate": 0.1,
                     "decay_steps": 1, "decay_rate": 0.5},
    }  # fmt: skip
    for name, cls in CALLBACK_TYPES.items():
        assert cls.model_validate({"type": name, "verbose": 1, **required.get(name, {})}).verbose


@pytest.mark.parametrize(
    "entry,expected",
    [
        (
            "{type: ModelCheckpoint, filepath: best.keras}",
            "train.callbacks[0].filepath: modelspec writes ModelCheckpoint's weights into "
            "the run directory",
        ),
        ("{type: CSVLogger, filename: ../out.csv}", "train.callbacks[0].filename: must be a path"),
        ("{type: ModelCheckpoint, save_freq: 100}", "train.callbacks[0].save_freq: must be one"),
        (
            "{type: BackupAndRestore}",
            "train.callbacks[0].type: Keras callback 'BackupAndRestore' is not supported yet.",
        ),
    ],
    ids=["filepath", "escaping_filename", "batch_save_freq", "unsupported"],
)
def test_callback_argument_errors_are_positioned(tmp_path, entry, expected):
    spec = project(tmp_path, f"train:\n  callbacks:\n    - {entry}\n")
    with pytest.raises(SpecError) as info:
        load(spec)
    assert f"{spec}:17:" in str(info.value) and expected in str(info.value)


def test_learning_rate_scheduler_needs_a_nonzero_constant_rate(tmp_path):
    spec = project(
        tmp_path,
        "train:\n  callbacks:\n    - {type: LearningRateScheduler, schedule: "
        "{type: ExponentialDecay, initial_learning_rate: 0.1, decay_steps: 1, decay_rate: 0.5}}\n",
    )
    with pytest.raises(SpecError, match=r"spec.yaml:17:7: train.callbacks\[0\]: "):
        train(spec, tmp_path / "run", overrides=["optimizer.learning_rate=0"], progress=False)


def test_build_callbacks_hands_the_run_directory(tmp_path):
    spec = load(
        project(tmp_path, "train:\n  callbacks: [{type: CSVLogger, filename: x/y.csv}]\n")
    ).spec
    (cb,) = build_callbacks(spec.train.callbacks, base_lr=0.1, run_dir=tmp_path)
    assert cb.path == tmp_path / "x" / "y.csv"
