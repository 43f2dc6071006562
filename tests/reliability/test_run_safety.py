"""Run safety (issue 12, must-show 4): disk full, the run lock, a dead peer, NaN.

Where each behaviour is tested (moved nowhere; this module adds what was missing):

| behaviour | test |
| --- | --- |
| disk full during a save: one clear error, previous checkpoint intact, resume | `tests/runtime/test_run_integrity.py::test_a_real_full_disk_then_resume` (a 300 KB tmpfs; skipped with a reason where it cannot be mounted) and `::test_a_full_disk_is_one_clear_error` |
| a second train refused at once naming the holder | `tests/runtime/test_run_integrity.py::test_two_concurrent_trains_the_second_is_refused_at_once` |
| a stale lock taken over | `tests/runtime/test_run_integrity.py::test_a_lock_left_by_a_dead_process_is_taken_over` |
| a dead peer: named, checkpoint to resume from, exit 4, bounded time | here |
| NaN: strict mode names the exact step, the normal mode the step window | here |
"""

from __future__ import annotations

import importlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.load import load
from modelspec.compiler.sharding.mesh import HEARTBEAT_TIMEOUT_S, put_batch
from modelspec.errors import SpecError
from modelspec.runtime.peers import PEER_LOST_EXIT
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train
from tests.runtime.test_distributed import free_port
from tests.runtime.test_run_integrity import ENV, SPEC, steps_of

REFERENCED = {
    "tests.runtime.test_run_integrity": [
        "test_a_real_full_disk_then_resume",
        "test_a_full_disk_is_one_clear_error",
        "test_two_concurrent_trains_the_second_is_refused_at_once",
        "test_a_lock_left_by_a_dead_process_is_taken_over",
    ]
}


def test_the_referenced_disk_full_and_lock_tests_exist():
    for module, names in REFERENCED.items():
        found = importlib.import_module(module)
        assert [n for n in names if not callable(getattr(found, n, None))] == []


@pytest.fixture
def project(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype("int32"))
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_a_dead_peer_is_named_with_the_checkpoint_and_exit_code_4(project):
    """SIGKILL process 1 of 2 mid-training: process 0 ends within the heartbeat
    timeout (30 s) plus a margin, with a Python-level message naming process 1 (its
    pid and host) and the newest checkpoint, exit code 4, and no JAX abort."""
    run, port = project / "run", free_port()
    args = [sys.executable, "-m", "modelspec", "train", str(project / "spec.yaml")]
    args += ["--run-dir", str(run), "--set", "train.epochs=100000"]
    args += ["--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id"]
    procs = [
        subprocess.Popen(
            [*args, str(i)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in (0, 1)
    ]
    survivor, victim = procs
    try:
        metrics, deadline = run / "metrics.jsonl", time.time() + 300
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            assert survivor.poll() is None and victim.poll() is None, survivor.communicate()
            assert time.time() < deadline, "the two processes did not start training"
            time.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        out, _ = survivor.communicate(timeout=HEARTBEAT_TIMEOUT_S + 60)
        elapsed = time.monotonic() - killed
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert survivor.returncode == PEER_LOST_EXIT, out[-3000:]
    assert elapsed < HEARTBEAT_TIMEOUT_S + 15, elapsed
    lost = re.search(r"Process 1 of 2 \(pid (\d+) on host (\S+)\) was lost: (.*)", out)
    assert lost, out[-3000:]
    assert int(lost.group(1)) == victim.pid
    assert f"it sent no heartbeat for {HEARTBEAT_TIMEOUT_S} s" in lost.group(3)
    step = re.search(rf"the newest checkpoint is step (\d+) in {re.escape(str(run))}", out)
    assert step, out[-3000:]
    assert (run / "checkpoints" / step.group(1)).is_dir()
    assert "start all 2 processes again with the same command" in out
    assert "Terminating process" not in out and "Check failure" not in out


EXPLODING = [  # SGD whose learning rate grows 4x per step: the loss overflows within ~20 steps
    "optimizer={type: SGD, learning_rate: {type: ExponentialDecay, "
    "initial_learning_rate: 0.5, decay_steps: 1, decay_rate: 4.0}}",
    "train.epochs=30",
]


def first_non_finite_step(spec: Path, overrides: list[str]) -> int:
    """The oracle: step by step outside the trainer, the first step (1-based) whose
    running mean loss is not finite, i.e. the first step with a non-finite loss."""
    session = open_session(spec, overrides)
    state, ds, d = session.state, session.data.train, session.spec.data
    per_epoch = ds.num_batches(d.batch_size, d.drop_remainder)
    for i in range(30 * per_epoch):
        epoch, index = divmod(i, per_epoch)
        batch = ds.batch(
            epoch, index, d.batch_size, shuffle=d.shuffle, seed=session.spec.seed,
            drop_remainder=d.drop_remainder,
        )  # fmt: skip
        state = session.train_step(state, put_batch(session.dist, batch))
        if not np.isfinite(float(session.objective.results(state.metrics)["loss"])):
            return i + 1
    raise AssertionError("the loss stayed finite")


def test_nan_strict_names_the_exact_step_and_the_normal_mode_the_window(project, capsys):
    spec = project / "spec.yaml"
    bad = first_non_finite_step(spec, EXPLODING)
    assert bad > 3  # not in the first epoch: the windows below are real windows

    strict = train(spec, project / "strict", [*EXPLODING, "train.terminate_on_nan=strict"])
    out = capsys.readouterr().out
    kept = strict.summary["nan_checkpoint"]
    assert strict.summary["stopped_on_nan"] and kept == steps_of(project / "strict")[-1]
    assert kept < bad  # saves every 2 steps and at epoch ends; only finite ones
    assert (
        f"TerminateOnNaN: non-finite loss or weights at step {bad}; stopping: the last "
        f"good checkpoint, step {kept}, is kept in {project / 'strict'}."
    ) in out

    normal = train(spec, project / "normal", [*EXPLODING, "checkpoint.save_every_steps=null"])
    out = capsys.readouterr().out
    window = re.search(r"non-finite loss or weights in steps (\d+)-(\d+) \(finite at", out)
    assert window, out
    first, last = int(window.group(1)), int(window.group(2))
    assert first <= bad <= last and last - first == 2 and last % 3 == 0  # epoch-end checks
    assert "train.terminate_on_nan: strict names the exact step" in out
    assert f"step {normal.summary['nan_checkpoint']}, is kept" in out
    assert normal.summary["nan_checkpoint"] == first - 1  # the last passed check's save


def test_nan_strict_through_the_cli_exits_3(project):
    result = CliRunner().invoke(
        app,
        ["train", str(project / "spec.yaml"), "--run-dir", str(project / "cli"),
         *sum((["--set", o] for o in [*EXPLODING, "train.terminate_on_nan=strict"]), [])],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert re.search(r"non-finite loss or weights at step \d+;", result.stdout)


@pytest.mark.parametrize(
    "value,received", [("sometimes", "'sometimes'"), ("Strict", "'Strict'"), ("2", "2")]
)
def test_terminate_on_nan_refuses_other_values_positioned(project, value, received):
    spec = project / "bad.yaml"
    spec.write_text(
        SPEC.replace("train: {epochs: 3}", f"train: {{epochs: 3, terminate_on_nan: {value}}}")
    )
    with pytest.raises(SpecError) as err:
        load(spec)
    line = SPEC.splitlines().index("train: {epochs: 3}") + 1
    col = len("train: {epochs: 3, terminate_on_nan: ") + 1  # 1-based, at the value
    assert str(err.value).startswith(
        f"{spec}:{line}:{col}: train.terminate_on_nan: must be true, false or 'strict'. "
        f"Received: terminate_on_nan={received}"
    ), str(err.value)
