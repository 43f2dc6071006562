"""Run edges a hostile probe found after the first integrity fixes: a rerun that ends
where an interrupted one stopped, a run directory whose every checkpoint is damaged,
predict without the run's spec.yaml or with outputs that overflow, the output file
name, and Ctrl-C while JAX is still starting."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.runtime.inference import nonfinite_warnings
from modelspec.runtime.trainer import train
from tests.conftest import ROOT

IRIS = str(ROOT / "examples" / "iris" / "mlp.yaml")
FAST = ["train.callbacks=[]", "checkpoint.save_every_steps=2", "checkpoint.max_to_keep=null"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short iris run whose latest step is also an earlier checkpoint's step."""
    run = tmp_path_factory.mktemp("run") / "iris"
    # 8 steps an epoch: an epoch-end checkpoint at 8, then one at 10 (epoch 1, batch 2)
    train(IRIS, run, [*FAST, "train.epochs=3"], progress=False, max_steps=10)
    return run


def test_a_shorter_rerun_saves_its_final_state_over_the_step_it_resumed(trained, tmp_path):
    run = tmp_path / "again"
    shutil.copytree(trained, run)
    history = train(IRIS, run, [*FAST, "train.epochs=1"], progress=False)
    assert history.run_dir == run and not history.summary.get("stopped_on_nan")
    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2, 4, 6, 8, 10]  # the run ended where it resumed: step 10, saved again


def test_every_checkpoint_damaged_says_training_starts_over(trained, tmp_path, capsys):
    run = tmp_path / "damaged"
    shutil.copytree(trained, run)
    for step in (run / "checkpoints").iterdir():
        if step.name.isdigit():
            shutil.rmtree(step / "state")
    train(IRIS, run, [*FAST, "train.epochs=1"], progress=True, tty=False)
    out = capsys.readouterr().out
    assert "No intact checkpoint is left in" in out and "training starts over" in out


def _inputs(tmp_path, value: float = 1.0):
    path = tmp_path / "x.npz"
    np.savez(path, features=np.full((3, 4), value, np.float32))
    return path


def test_predict_warns_without_the_runs_spec_and_names_the_file_written(trained, tmp_path):
    run = tmp_path / "nospec"
    shutil.copytree(trained, run)
    (run / "spec.yaml").unlink()
    out = tmp_path / "preds"  # no .npz: np.savez adds it, and the message says so
    result = CliRunner().invoke(
        app,
        [
            "predict",
            IRIS,
            "--run-dir",
            str(run),
            "--input",
            str(_inputs(tmp_path)),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "spec.yaml is missing or unreadable" in result.stderr
    assert f"Wrote {out}.npz: " in result.stdout
    assert (tmp_path / "preds.npz").is_file()


def test_predict_warns_about_non_finite_outputs():
    outputs = {
        "a": np.array([[1.0, np.inf], [np.nan, 2.0]], np.float32),
        "b": np.ones((2, 2), np.float32),
        "c": np.arange(4),
    }
    assert nonfinite_warnings(outputs) == [
        "Warning: 2 of 4 values of output 'a' are NaN or infinite (the trained weights "
        "overflow on these inputs)."
    ]


@pytest.mark.parametrize("after", [0.3, 0.8])
def test_ctrl_c_while_jax_starts_is_a_message_not_a_traceback(tmp_path, after):
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelspec", "train", IRIS, "--run-dir", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGINT: interrupted" in err
    assert "Traceback" not in err


def test_rerun_of_a_finished_run_on_ema_weights_says_it_is_not_continued(trained, tmp_path, capsys):
    """A finished run whose final weights are the optimizer's EMA weights is not extended
    by a larger train.epochs (plain runs are: tests/runtime/test_continue_run.py); that
    used to end with "Done in 0.0s" alone."""
    run = tmp_path / "finished"
    ema = [*FAST, "optimizer.use_ema=true"]
    train(IRIS, run, [*ema, "train.epochs=1"], progress=False)  # finishes at epoch 1
    lines = (run / "metrics.jsonl").read_text().splitlines()
    train(IRIS, run, [*ema, "train.epochs=4"], progress=True, tty=False)
    out = capsys.readouterr().out
    assert f"The run in {run} finished after epoch 1 and is not continued to train.epochs=4" in out
    assert "EMA weights" in out and "Use --restart" in out
    assert (run / "metrics.jsonl").read_text().splitlines() == lines


def test_predict_of_a_mixed_bfloat16_model_writes_float32_numbers(tmp_path):
    """numpy has no bfloat16: np.savez stored the outputs as 2-byte voids ('V2')."""
    from modelspec.runtime.inference import predict

    policy = [*FAST, "train.epochs=1", "model.dtype_policy=mixed_bfloat16"]
    train(IRIS, tmp_path / "run", policy, progress=False)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", features=x)
    returned = predict(IRIS, tmp_path / "run", tmp_path / "x.npz", tmp_path / "y.npz", policy)
    written = np.load(tmp_path / "y.npz")["species"]
    assert written.dtype == np.float32 and returned["species"].dtype == np.float32
    assert written.shape == (5, 3) and np.isfinite(written).all()
    np.testing.assert_array_equal(written, written.astype("bfloat16").astype(np.float32))
