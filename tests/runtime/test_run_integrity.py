"""Run-directory integrity (issue #7 items 5, 6, 7, 9, 15): damaged checkpoints, the run
lock, TerminateOnNaN's kept checkpoint and exit code, a full disk, SIGINT/SIGTERM, and
predict/evaluate against a changed spec. Every case is a clear message and a documented
exit code, never a traceback. Tiny model (4 -> 1024 -> 2), a few steps per run."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.runtime.checkpoint import MODEL_FIELDS, Checkpointer
from modelspec.runtime.lock import RunLock
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train
from tests.conftest import ROOT

SPEC = """\
name: tiny-integrity
data:
  train: {type: npz, path: d.npz, targets: {out: y}}
  validation_split: 0.25
  batch_size: 16
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {name: h, type: Dense, units: 1024, activation: relu}
    - {name: out, type: Dense, units: 2}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
metrics: [accuracy]
optimizer: {type: SGD, learning_rate: 0.1}
train: {epochs: 3}
checkpoint: {save_every_steps: 2, max_to_keep: null}
"""
ENV = {
    **os.environ,
    "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(ROOT),
}
# A train that waits after writing each metrics line while a "hold" file exists: a run
# that lasts exactly as long as the test needs, without sleeping for a guessed time.
SLOW_TRAIN = """\
import os, sys, time
from modelspec.runtime import runlog
hold, args = sys.argv[1], sys.argv[2:]
original = runlog.MetricsLog.append
def append(self, record):
    original(self, record)
    while os.path.exists(hold):
        time.sleep(0.02)
runlog.MetricsLog.append = append
from modelspec.cli import main
sys.argv = ["modelspec", *args]
main()
"""


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def steps_of(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A spec with its data, inputs for predict, and one finished run (checkpoints at
    steps 2, 3, 4, 6, 8, 9)."""
    root = tmp_path_factory.mktemp("integrity")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    np.savez(root / "d.npz", x=x, y=(x[:, 0] > 0).astype("int32"))
    np.savez(root / "x.npz", x=x[:10])
    (root / "spec.yaml").write_text(SPEC)
    train(root / "spec.yaml", root / "run", progress=False)
    return root


def copy_run(project: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(project / "run", run)
    return run


def data_files(step_dir: Path) -> list[Path]:
    """The state's ocdbt data files, largest first. Which of them orbax reads depends on
    how its writes were merged (the layout varies from run to run), so damage meant to
    hit the arrays is applied to each."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def damage(kind: str, step_dir: Path) -> None:
    if kind == "bit_flips":  # 16 bytes in the middle of each data file
        for f in data_files(step_dir):
            data = bytearray(f.read_bytes())
            middle = len(data) // 2
            data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
            f.write_bytes(bytes(data))
    elif kind == "other_steps_arrays":  # readable, but not the arrays saved with this step
        shutil.rmtree(step_dir / "state")
        previous = max(
            int(p.name) for p in step_dir.parent.iterdir() if p.name.isdigit() and p != step_dir
        )
        shutil.copytree(step_dir.parent / str(previous) / "state", step_dir / "state")
    elif kind == "truncated_data":
        for f in data_files(step_dir):
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif kind == "zero_filled":
        for f in data_files(step_dir):
            f.write_bytes(bytes(f.stat().st_size))
    elif kind == "no_manifest":
        (step_dir / "state" / "manifest.ocdbt").unlink()
    elif kind == "empty_metadata":
        (step_dir / "meta" / "metadata").write_text("")
    elif kind == "invalid_metadata":
        (step_dir / "meta" / "metadata").write_text('{"epoch": 1, ')
    elif kind == "no_state_dir":
        shutil.rmtree(step_dir / "state")
    elif kind == "no_meta_dir":
        shutil.rmtree(step_dir / "meta")
    elif kind == "empty_step_dir":
        shutil.rmtree(step_dir)
        step_dir.mkdir()
    elif kind == "step_dir_is_a_file":
        shutil.rmtree(step_dir)
        step_dir.write_text("not a checkpoint")


KINDS = [
    "bit_flips",
    "other_steps_arrays",
    "truncated_data",
    "no_manifest",
    "empty_metadata",
    "invalid_metadata",
    "no_state_dir",
    "no_meta_dir",
    "empty_step_dir",
    "zero_filled",
    "step_dir_is_a_file",
]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_latest_checkpoint_is_refused_by_predict_and_skipped_by_train(
    project, tmp_path, kind, monkeypatch
):
    """Must-show: predict names the damaged step and the fix (exit 2, no traceback);
    train sets it aside, says so, and resumes from the previous checkpoint."""
    copy_run(project, tmp_path)
    monkeypatch.chdir(tmp_path)
    run = Path("run")  # relative, as users type it
    *_, previous, latest = steps_of(run)
    damage(kind, run / "checkpoints" / str(latest))
    spec = project / "spec.yaml"
    out = tmp_path / "y.npz"
    refused = invoke(
        "predict", spec, "--run-dir", run, "--input", project / "x.npz", "--output", out
    )
    assert refused.exit_code == 2, refused.output
    assert f"checkpoint step {latest} in {run} is damaged" in refused.stderr
    assert f"to use step {previous}" in refused.stderr
    assert "Traceback" not in refused.output and not out.exists()

    resumed = invoke("train", spec, "--run-dir", run)
    assert resumed.exit_code == 0, resumed.output
    assert f"Checkpoint step {latest} in {run} is damaged" in resumed.stdout
    assert f"Resuming from step {previous} " in resumed.stdout
    assert (run / "checkpoints" / f"{latest}.damaged").exists()
    assert steps_of(run)[-1] == latest  # trained again up to the end
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_evaluate_refuses_arrays_that_do_not_match_their_digest(project, tmp_path):
    run = copy_run(project, tmp_path)
    latest = steps_of(run)[-1]
    ok = invoke("evaluate", project / "spec.yaml", "--run-dir", run)
    assert ok.exit_code == 0, ok.output
    assert f"Using checkpoint step {latest} of {run}" in ok.stderr
    damage("other_steps_arrays", run / "checkpoints" / str(latest))
    bad = invoke("evaluate", project / "spec.yaml", "--run-dir", run)
    assert bad.exit_code == 2 and "do not match the digest" in bad.stderr, bad.output
    assert ".params['layers']['h']['kernel']" in bad.stderr


def test_a_checkpoint_without_digest_is_accepted_with_a_note(project, tmp_path):
    """Checkpoints written before digests existed still work (documented choice)."""
    run = copy_run(project, tmp_path)
    meta = run / "checkpoints" / str(steps_of(run)[-1]) / "meta" / "metadata"
    data = json.loads(meta.read_text())
    del data["digest"]
    meta.write_text(json.dumps(data))
    out = tmp_path / "y.npz"
    result = invoke(
        "predict", project / "spec.yaml", "--run-dir", run, "--input", project / "x.npz",
        "--output", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "has no digest" in result.stderr and out.exists()


def test_predict_accepts_an_optimizer_change_and_refuses_a_model_change(project, tmp_path):
    """Must-show: only the model matters to predict; a changed activation is refused
    with the differing path, unless --allow-spec-change."""
    run = project / "run"
    base = ["--run-dir", run, "--input", project / "x.npz"]
    first = invoke("predict", project / "spec.yaml", *base, "--output", tmp_path / "a.npz")
    assert first.exit_code == 0, first.output
    adam = tmp_path / "adam.yaml"
    adam.write_text(
        SPEC.replace("path: d.npz", f"path: {project / 'd.npz'}").replace("SGD", "Adam")
    )
    second = invoke("predict", adam, *base, "--output", tmp_path / "b.npz")
    assert second.exit_code == 0, second.output
    np.testing.assert_array_equal(
        np.load(tmp_path / "a.npz")["out"], np.load(tmp_path / "b.npz")["out"]
    )
    tanh = tmp_path / "tanh.yaml"
    tanh.write_text(adam.read_text().replace("activation: relu", "activation: tanh"))
    refused = invoke("predict", tanh, *base, "--output", tmp_path / "c.npz")
    assert refused.exit_code == 2, refused.output
    assert "model.layers[0].activation: trained with 'relu', now 'tanh'" in refused.stderr
    assert f"{run / 'spec.yaml'}" in refused.stderr and "--allow-spec-change" in refused.stderr
    allowed = invoke("predict", tanh, *base, "--output", tmp_path / "c.npz", "--allow-spec-change")
    assert allowed.exit_code == 0 and "Warning: the model differs" in allowed.stderr
    evaluated = invoke("evaluate", tanh, "--run-dir", run)
    assert evaluated.exit_code == 2 and "trained with 'relu'" in evaluated.stderr


def test_terminate_on_nan_keeps_only_a_finite_checkpoint_and_names_it(project, tmp_path, capsys):
    """Must-show: a learning rate growing 4x per step with a save every step: training
    stops, the message names the kept step, and that checkpoint's weights are finite."""
    overrides = [
        "optimizer={type: SGD, learning_rate: {type: ExponentialDecay, "
        "initial_learning_rate: 0.5, decay_steps: 1, decay_rate: 4.0}}",
        "checkpoint.save_every_steps=1",
        "train.epochs=30",
    ]
    history = train(project / "spec.yaml", tmp_path / "nan", overrides)
    assert history.summary["stopped_on_nan"] is True
    kept = history.summary["nan_checkpoint"]
    assert kept is not None and kept == steps_of(tmp_path / "nan")[-1]
    assert f"the last good checkpoint, step {kept}, is kept" in capsys.readouterr().out
    session = open_session(project / "spec.yaml", overrides, data=False)
    ckpt = Checkpointer(tmp_path / "nan/checkpoints", max_to_keep=None, async_save=False)
    state, _ = ckpt.restore(kept, session.state, fields=MODEL_FIELDS)
    ckpt.close()
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state.params))


def test_terminate_on_nan_without_a_checkpoint_says_so_and_exits_3(project, tmp_path):
    result = invoke(
        "train", project / "spec.yaml", "--run-dir", tmp_path / "nan",
        "--set", "optimizer.learning_rate=1.0e+30", "--set", "checkpoint.save_every_steps=null",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "no checkpoint was kept" in result.stdout
    assert "last good checkpoint" not in result.stdout


def test_two_concurrent_trains_the_second_is_refused_at_once(project, tmp_path):
    """Must-show: the second train exits 2 within seconds naming the first; the first
    finishes normally with exactly one metrics line per epoch."""
    run, hold = tmp_path / "run", tmp_path / "hold"
    hold.touch()
    script = tmp_path / "slow_train.py"
    script.write_text(SLOW_TRAIN)
    args = ["train", str(project / "spec.yaml"), "--run-dir", str(run)]
    first = subprocess.Popen(
        [sys.executable, str(script), str(hold), *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        metrics = run / "metrics.jsonl"
        while not (metrics.exists() and metrics.read_text()) and time.time() < deadline:
            assert first.poll() is None, first.communicate()[0]
            time.sleep(0.05)
        started = time.perf_counter()
        second = invoke(*args)
        elapsed = time.perf_counter() - started
        assert second.exit_code == 2, second.output
        assert f"run directory {run} is in use by pid {first.pid} on host" in second.stderr
        assert elapsed < 5
    finally:
        hold.unlink()
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert (run / "train.lock").read_text() == ""  # released: no stale owner left


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "host": socket.gethostname(), "since": time.time()}
    (tmp_path / "train.lock").write_text(json.dumps(record))
    with RunLock(tmp_path) as lock:
        assert f"left by pid {dead.pid}" in lock.note and "no longer running" in lock.note
        assert json.loads((tmp_path / "train.lock").read_text())["pid"] == os.getpid()


def test_sigterm_stops_with_a_message_and_exit_143(project, tmp_path):
    run, hold = tmp_path / "run", tmp_path / "hold"
    hold.touch()
    script = tmp_path / "slow_train.py"
    script.write_text(SLOW_TRAIN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(hold), "train", str(project / "spec.yaml"),
         "--run-dir", str(run)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text()) and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # while it waits after logging epoch 1
    time.sleep(0.2)
    hold.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in err
    # the epoch's own end-of-epoch checkpoint is the one a rerun resumes from
    assert (
        f"SIGTERM: training stopped at step 3 (epoch 1, at its end); saved checkpoint step 3 "
        f"in {run}; a rerun resumes from there. Rerun the same command to resume."
    ) in err
    assert steps_of(run) == [2, 3]
    assert len(metrics.read_text().splitlines()) == 1


def test_ctrl_c_stops_at_the_next_dispatch_with_exit_130(project, tmp_path, monkeypatch):
    from modelspec.runtime import runlog

    original = runlog.Progress.advance

    def advance(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C was pressed during step 1

    monkeypatch.setattr(runlog.Progress, "advance", advance)
    run = tmp_path / "run"
    result = invoke("train", project / "spec.yaml", "--run-dir", run)
    assert result.exit_code == 130, result.output
    # a checkpoint is saved where it stopped (step 1, before the first periodic one)
    assert (
        f"SIGINT: training stopped at step 1 (epoch 1, batch 1 of 3); saved checkpoint step 1 "
        f"in {run}; a rerun resumes from there. Rerun the same command to resume."
    ) in result.stderr
    assert steps_of(run) == [1]
    monkeypatch.setattr(runlog.Progress, "advance", original)
    again = invoke("train", project / "spec.yaml", "--run-dir", run)
    assert again.exit_code == 0, again.output
    assert f"Resuming from step 1 (epoch 1, batch 1) in {run}" in again.output
    # ... and ends where an uninterrupted run ends, bit for bit
    resumed = Checkpointer(run / "checkpoints", max_to_keep=None, async_save=False)
    whole = Checkpointer(project / "run" / "checkpoints", max_to_keep=None, async_save=False)
    try:
        assert resumed.read_meta(9)["digest"] == whole.read_meta(9)["digest"]
    finally:
        resumed.close()
        whole.close()


def _wrapped_orbax_error(*args, **kwargs):
    inner = ValueError(
        "RESOURCE_EXHAUSTED: Error writing local file: Failed to write 3904 bytes to file 8:"
        " No space left on device [os_error_code='28']"
    )
    raise RuntimeError("Save Finalize thread (save_finalize) failed") from inner


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    "target,replacement,reason",
    [
        ("modelspec.runtime.runlog.MetricsLog.append", _enospc, "No space left on device"),
        ("modelspec.runtime.checkpoint.Checkpointer.save", _wrapped_orbax_error, "No space left"),
        (
            "modelspec.runtime.diskfull.shutil.disk_usage",
            lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000),
            "only 1000 bytes free",
        ),
    ],
    ids=["metrics_write", "orbax_wrapped", "free_space_check"],
)
def test_a_full_disk_is_one_clear_error(
    project, tmp_path, monkeypatch, target, replacement, reason
):
    monkeypatch.setattr(target, replacement)
    run = tmp_path / "run"
    result = invoke("train", project / "spec.yaml", "--run-dir", run)
    assert result.exit_code == 2, result.output
    assert f"{run}: --run-dir: the disk holding {run} is full ({reason}" in result.stderr
    assert "saving a checkpoint needs about" in result.stderr
    assert "rerun the same command" in result.stderr and "Traceback" not in result.output


def test_a_real_full_disk_then_resume(project, tmp_path):
    """On a 300 KB tmpfs (needs root; skipped otherwise): the error, then after
    making room the same command resumes and finishes."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)])
    if made.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        run = mount / "run"
        args = [
            "train",
            project / "spec.yaml",
            "--run-dir",
            run,
            "--set",
            "checkpoint.save_every_steps=1",
        ]
        full = invoke(*args, "--set", "train.epochs=6")
        assert full.exit_code == 2, full.output
        assert "is full" in full.stderr and "Traceback" not in full.output
        kept = steps_of(run)[-1]
        assert f"it resumes from checkpoint step {kept}" in full.stderr
        subprocess.run(["mount", "-o", "remount,size=4m", str(mount)], check=True)
        resumed = invoke(*args, "--set", "train.epochs=6", "--set", "checkpoint.max_to_keep=2")
        assert resumed.exit_code == 0, resumed.output
        assert f"Resuming from step {kept} " in resumed.stdout
    finally:
        subprocess.run(["umount", str(mount)])
