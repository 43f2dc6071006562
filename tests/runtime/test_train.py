"""`modelspec train` end to end: the digits example, exact resume after SIGKILL,
evaluate/predict, data errors before step 1, progress display, callbacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.runtime.checkpoint import Checkpointer
from modelspec.runtime.session import open_session
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples/digits/cnn.yaml")
ENV = {
    **os.environ,
    "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(ROOT),
}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def final_state(spec, run_dir, overrides):
    session = open_session(spec, overrides)
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=None, async_save=False)
    step = ckpt.latest_step()
    assert ckpt.read_meta(step)["finished"]
    state, _ = ckpt.restore(step, session.state)
    ckpt.close()
    return state


def test_digits_example_trains_to_target(tmp_path):
    """Must-show: the example reaches val_accuracy >= 0.97, per its metrics.jsonl."""
    result = CliRunner().invoke(app, ["train", EXAMPLE, "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "run/metrics.jsonl")
    assert records[-1]["val_accuracy"] >= 0.97
    assert {"epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(records[0])
    assert "Epoch 1/30 - " in result.stdout  # plain lines when not a TTY
    assert (tmp_path / "run/spec.yaml").exists()
    assert any((tmp_path / "run/tensorboard").iterdir())


SLOW = [
    "--set",
    "model.layers[2].filters=96",
    "--set",
    "model.layers[4].filters=192",
    "--set",
    "train.epochs=3",
    "--set",
    "checkpoint.save_every_steps=8",
    "--set",
    "train.callbacks=[]",
]


def _train_cmd(run_dir):
    return [sys.executable, "-m", "modelspec", "train", EXAMPLE, "--run-dir", str(run_dir), *SLOW]


def test_sigkill_then_rerun_is_bit_identical(tmp_path):
    """Must-show: kill -9 after a checkpoint, rerun the same command, same final params."""
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full), env=ENV, check=True, capture_output=True, timeout=600)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _train_cmd(cut), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    ckdir = cut / "checkpoints"
    while time.time() < deadline:
        steps = [int(p.name) for p in ckdir.glob("*") if p.name.isdigit()] if ckdir.exists() else []
        if any(s >= 16 for s in steps):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpt = Checkpointer(ckdir, max_to_keep=None, async_save=False)
    killed_at = ckpt.latest_step()
    assert killed_at is not None and not ckpt.read_meta(killed_at)["finished"], (
        "the run finished before it could be killed"
    )
    ckpt.close()

    rerun = subprocess.run(_train_cmd(cut), env=ENV, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Resuming from step {killed_at}" in rerun.stdout

    overrides = [a for a in SLOW if a != "--set"]
    a, b = final_state(EXAMPLE, full, overrides), final_state(EXAMPLE, cut, overrides)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert read_jsonl(full / "metrics.jsonl") == read_jsonl(cut / "metrics.jsonl")


def on_example(command: str, run_dir, *args: str):
    """`modelspec <command> <EXAMPLE> --run-dir <run_dir> <args...>`, run in-process."""
    return CliRunner().invoke(app, [command, EXAMPLE, "--run-dir", str(run_dir), *args])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("short") / "run"
    result = on_example("train", run, "--set", "train.epochs=2")
    assert result.exit_code == 0, result.output
    return run


def test_evaluate_reproduces_final_val_loss(short_run):
    result = on_example("evaluate", short_run, "--set", "train.epochs=2")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    last = read_jsonl(short_run / "metrics.jsonl")[-1]
    assert evaluated["loss"] == pytest.approx(last["val_loss"], rel=1e-6)
    assert evaluated["accuracy"] == pytest.approx(last["val_accuracy"], rel=1e-6)


def predict(run_dir, inputs, outputs):
    """`modelspec predict` of the example's run on the `inputs` .npz into `outputs`."""
    return on_example("predict", run_dir, "--input", str(inputs), "--output", str(outputs))


def test_predict_writes_named_outputs(short_run, tmp_path):
    from sklearn.datasets import load_digits

    np.savez(tmp_path / "x.npz", pixels=load_digits().data[:70])
    result = predict(short_run, tmp_path / "x.npz", tmp_path / "y.npz")
    assert result.exit_code == 0, result.output
    out = np.load(tmp_path / "y.npz")
    assert out.files == ["dense"] and out["dense"].shape == (70, 10)
    np.savez(tmp_path / "bad.npz", image=load_digits().data[:5])
    bad = predict(short_run, tmp_path / "bad.npz", tmp_path / "z.npz")
    assert bad.exit_code == 2 and "no array named 'pixels'" in bad.stderr


def test_rerun_of_finished_run_and_incompatible_spec(short_run):
    again = on_example("train", short_run, "--set", "train.epochs=2")
    assert again.exit_code == 0 and "Resuming from step" in again.stdout
    changed = on_example(
        "train", short_run, "--set", "train.epochs=2", "--set", "model.layers[2].filters=8"
    )
    assert changed.exit_code == 2
    assert "does not fit this spec" in changed.stderr and "--restart" in changed.stderr


def write_npz_spec(tmp_path, arrays, extra=""):
    np.savez(tmp_path / "d.npz", **arrays)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"""\
name: npz-model
data:
  train: {{type: npz, path: d.npz{extra}}}
  batch_size: 8
model:
  inputs: {{pixels: {{shape: [4]}}}}
  layers: [{{name: out, type: Dense, units: 3}}]
loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
""")
    return spec


@pytest.mark.parametrize(
    "arrays,extra,expected",
    [
        (
            {"pixels": np.zeros((8, 5)), "y": np.zeros(8, int)},
            "",
            "array 'pixels' has shape (N, 5) but model input 'pixels' expects (None, 4)",
        ),
        (
            {"pixels": np.zeros((8, 4)), "y": np.arange(8)},
            "",
            "labels in array 'y' range from 0 to 7",
        ),
        (
            {"images": np.zeros((8, 4)), "y": np.zeros(8, int)},
            ", inputs: {pixels: image}",
            "Did you mean 'images'?",
        ),
    ],
)
def test_bad_data_fails_before_step_one(tmp_path, monkeypatch, arrays, extra, expected):
    spec = write_npz_spec(tmp_path, arrays, extra)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "s.yaml:" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_progress_bar_on_a_tty(tmp_path):
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelspec",
            "train",
            EXAMPLE,
            "--run-dir",
            str(tmp_path / "r"),
            "--set",
            "train.epochs=2",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**ENV, "COLUMNS": "120"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "Epoch 1/2" in text and "━" in text  # rich's bar
    assert "Epoch 1/2 - " not in text  # no plain lines on a terminal


def test_callbacks_early_stopping_and_reduce_lr(tmp_path):
    from modelspec.runtime.trainer import train

    history = train(
        EXAMPLE,
        tmp_path / "cb",
        [
            "train.epochs=6",
            "optimizer={type: SGD, learning_rate: 0.0}",
            "train.callbacks=[{type: EarlyStopping, monitor: val_loss, patience: 2, min_delta: 0.1}, "
            "{type: ReduceLROnPlateau, monitor: val_loss, patience: 1, factor: 0.5}]",
        ],
        progress=False,
    )
    assert len(history.epochs) == 3  # no improvement after epoch 1 -> stops at epoch 3


def test_steps_per_execution_matches_single_steps(tmp_path):
    from modelspec.runtime.trainer import train

    common = ["train.epochs=2", "train.callbacks=[]", "model.layers[6].rate=0.0"]
    one = train(EXAMPLE, tmp_path / "one", common, progress=False)
    four = train(
        EXAMPLE, tmp_path / "four", [*common, "train.steps_per_execution=4"], progress=False
    )
    for a, b in zip(one.epochs, four.epochs, strict=True):
        assert a["step"] == b["step"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def test_terminate_on_nan_keeps_last_good_checkpoint(tmp_path):
    from modelspec.runtime.trainer import train

    history = train(
        EXAMPLE,
        tmp_path / "nan",
        ["train.epochs=3", "train.callbacks=[]", "optimizer={type: SGD, learning_rate: 1.0e+30}"],
        progress=False,
    )
    assert len(history.epochs) == 0
    ckpt = Checkpointer(tmp_path / "nan/checkpoints", max_to_keep=None, async_save=False)
    assert ckpt.latest_step() is None or not ckpt.read_meta(ckpt.latest_step())["finished"]
    ckpt.close()


@pytest.mark.parametrize(
    "callbacks,expected",
    [
        ("[{type: EarlyStopping, monitor: val_acuracy}]", "Did you mean 'val_accuracy'?"),
        ("[{type: ReduceLROnPlateau}]", "ReduceLROnPlateau needs a constant learning rate"),
    ],
)
def test_callback_problems_fail_before_step_one(tmp_path, callbacks, expected):
    result = CliRunner().invoke(
        app,
        [
            "train",
            EXAMPLE,
            "--run-dir",
            str(tmp_path / "r"),
            "--set",
            f"train.callbacks={callbacks}",
        ],
    )
    assert result.exit_code == 2 and expected in result.stderr
    assert result.stderr.startswith("--set 'train.callbacks=")  # where the value was written


def test_changed_callbacks_on_resume_are_reported(short_run):
    result = CliRunner().invoke(
        app,
        [
            "train",
            EXAMPLE,
            "--run-dir",
            str(short_run),
            "--set",
            "train.epochs=2",
            "--set",
            "train.callbacks=[]",
        ],
    )
    assert result.exit_code == 2 and "--restart" in result.stderr


def test_step_interval_landing_on_epoch_end_is_saved(tmp_path):
    from modelspec.runtime.trainer import train

    train(
        EXAMPLE,
        tmp_path / "r",
        [
            "train.epochs=2",
            "train.callbacks=[]",
            "checkpoint={save_every_steps: 23, save_at_epoch_end: false, max_to_keep: null}",
        ],
        progress=False,
    )
    steps = sorted(int(p.name) for p in (tmp_path / "r/checkpoints").iterdir() if p.name.isdigit())
    assert steps == [23, 46]


def test_evaluate_data_path_with_special_characters(short_run, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    odd = tmp_path / "a,b #c"
    odd.mkdir()
    np.savez(odd / "val.npz", pixels=d.data[:50], dense=d.target[:50])
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            EXAMPLE,
            "--run-dir",
            str(short_run),
            "--set",
            "train.epochs=2",
            "--data",
            str(odd / "val.npz"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"loss", "accuracy"}


def test_iris_csv_example_trains(tmp_path):
    import modelspec

    history = modelspec.train(ROOT / "examples/iris/mlp.yaml", tmp_path / "iris", progress=False)
    assert max(e["val_accuracy"] for e in history.epochs) >= 0.9
