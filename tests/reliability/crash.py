"""SIGKILL at chosen moments of `modelspec train`, then rerun: the crash-consistency harness.

Why a wrapper around the real command: the moments that matter (an async checkpoint save
in flight, a metrics line half written, a TensorBoard event being written, a step being
computed) last milliseconds, so a kill timed from outside rarely lands in most of them.
`WRAPPER` runs `modelspec train` unchanged, but logs each of those moments to an events
file (so a kill timed from outside can be told where it landed) and, when
`MODELSPEC_CRASH_AT=<moment>:<n>` is set, sends itself SIGKILL inside the n-th one.
Used by `tests/reliability/test_crash.py` (three seeded kills) and by
`bench/reliability.py crash` (N kills timed uniformly over a measured run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MOMENTS = ("step", "save", "metrics", "rewrite", "tensorboard")

SPEC = """\
modelspec: 1
name: crash-consistency
seed: 3
data:
  train: {type: npz, path: d.npz, targets: {out: y}}
  validation_split: 0.25
  batch_size: 16
model:
  inputs: {x: {shape: [8]}}
  layers:
    - {name: h, type: Dense, units: 256, activation: relu}
    - {name: drop, type: Dropout, rate: 0.2}
    - {name: out, type: Dense, units: 3}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
metrics: [accuracy]
optimizer: {type: Adam, learning_rate: 0.01}
train: {epochs: 4, log_every_steps: 3}
checkpoint: {save_every_steps: 5, max_to_keep: 2, async_save: true}
"""

WRAPPER = """\
import os, signal, sys, time
events = open(os.environ["MODELSPEC_CRASH_EVENTS"], "a", buffering=1)
crash_at = os.environ.get("MODELSPEC_CRASH_AT", "")
counts = {}

def hit(moment):
    counts[moment] = counts.get(moment, 0) + 1
    events.write(f"{time.time():.6f} {moment} {counts[moment]}\\n")
    return crash_at == f"{moment}:{counts[moment]}"

def die():
    os.kill(os.getpid(), signal.SIGKILL)

from modelspec.runtime import checkpoint, runlog, trainer

run = trainer.Trainer.run
def traced_run(self):
    hit("begin")
    out = run(self)
    hit("end")
    return out
trainer.Trainer.run = traced_run

advance = runlog.Progress.advance
def traced_advance(self, *args, **kwargs):  # right after a step's dispatch returns
    if hit("step"):
        die()  # the dispatched computation is still running
    return advance(self, *args, **kwargs)
runlog.Progress.advance = traced_advance

save = checkpoint.Checkpointer.save
def traced_save(self, *args, **kwargs):
    out = save(self, *args, **kwargs)  # async: the arrays are still being written
    if hit("save"):
        die()
    return out
checkpoint.Checkpointer.save = traced_save

append = runlog.MetricsLog.append
def traced_append(self, record):
    if hit("metrics"):
        import json
        line = json.dumps(record) + "\\n"
        with self.path.open("a") as f:  # half a line reaches the disk, then the kill
            f.write(line[: len(line) // 2])
        die()
    return append(self, record)
runlog.MetricsLog.append = traced_append

truncate = runlog.MetricsLog.truncate
def traced_truncate(self, epochs):  # on resume: metrics.jsonl cut back to the checkpoint
    if self.path.exists() and hit("rewrite"):  # its first file write stops halfway: kill
        import pathlib
        def torn(path, data, *args, **kwargs):
            with open(path, "w" if isinstance(data, str) else "wb") as f:
                f.write(data[: len(data) // 2])
            die()
        pathlib.Path.write_text = torn
        pathlib.Path.write_bytes = torn
        os.replace = lambda *args, **kwargs: die()
    return truncate(self, epochs)
runlog.MetricsLog.truncate = traced_truncate

scalars = runlog.TensorBoard.scalars
def traced_scalars(self, prefix, values, step):
    if hit("tensorboard") and self.writer is not None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar
        key, value = next(iter(values.items()))
        self.writer.write_event(Event(step=step, summary=scalar(f"{prefix}/{key}", value)))
        self.writer.flush()  # one event of the batch on disk, then the kill
        die()
    return scalars(self, prefix, values, step)
runlog.TensorBoard.scalars = traced_scalars

from modelspec.cli import main
sys.argv = ["modelspec", *sys.argv[1:]]
main()
"""


def make_project(folder: Path, seed: int = 0) -> Path:
    """The spec, its data (256 rows) and the inputs to predict, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    np.savez(folder / "d.npz", x=x, y=y)
    np.savez(folder / "x.npz", x=x[:40])
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "wrapper.py").write_text(WRAPPER)
    return folder


def _env(events: Path, crash_at: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
        "MODELSPEC_CRASH_EVENTS": str(events),
    }
    env.pop("MODELSPEC_CRASH_AT", None)
    if crash_at:
        env["MODELSPEC_CRASH_AT"] = crash_at
    return env


@dataclass
class Attempt:
    """One `modelspec train` process: how it ended and what it logged."""

    returncode: int
    output: str
    events: list[tuple[float, str, int]]
    killed_at: float | None = None
    """Wall-clock time of an outside SIGKILL."""


def read_events(path: Path) -> list[tuple[float, str, int]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((float(parts[0]), parts[1], int(parts[2])))
    return out


def train(
    project: Path,
    run_dir: Path,
    *,
    crash_at: str | None = None,
    kill_after: tuple[str, int, float] | None = None,
    timeout: float = 600,
) -> Attempt:
    """`modelspec train` of the project's spec into `run_dir`. `crash_at`: SIGKILL itself
    inside that moment (`save:2`); `kill_after=(moment, n, seconds)`: SIGKILL from
    outside that many seconds after the n-th event of that moment (`("begin", 1, 2.5)`:
    2.5 s into the training loop)."""
    events = run_dir.parent / f"{run_dir.name}.events"
    events.unlink(missing_ok=True)
    cmd = [sys.executable, str(project / "wrapper.py"), "train", str(project / "spec.yaml")]
    proc = subprocess.Popen(
        [*cmd, "--run-dir", str(run_dir)],
        env=_env(events, crash_at),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=project,
    )
    killed_at = None
    if kill_after is not None:
        moment, n, delay = kill_after
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            seen = [t for t, m, i in read_events(events) if (m, i) == (moment, n)]
            if seen:
                time.sleep(max(0.0, seen[0] + delay - time.time()))
                if proc.poll() is None:
                    killed_at = time.time()
                    proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    output, _ = proc.communicate(timeout=timeout)
    return Attempt(proc.returncode, output, read_events(events), killed_at)


def same_point(events: list[tuple[float, str, int]], seconds: float) -> tuple[str, int, float]:
    """The point of progress `seconds` into the training loop of a reference run, as the
    last event before it and the time since: a kill aimed there lands at the same point
    of another run, however fast the machine is at the moment."""
    begin = next(t for t, m, _ in events if m == "begin")
    at = begin + seconds
    t, moment, n = max((e for e in events if e[0] <= at), key=lambda e: e[0])
    return moment, n, at - t


def phase(run_dir: Path, attempt: Attempt) -> str:
    """Where an outside kill landed, from the events and what the run directory holds."""
    if attempt.returncode == 0:
        return "after the end"
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any("tmp" in p.name for p in checkpoints.iterdir()):
        return "async save in flight"
    before = [e for e in attempt.events if e[0] <= (attempt.killed_at or float("inf"))]
    if not before or before[-1][1] == "begin" and not any(e[1] == "step" for e in before):
        return "start (restore, compile)"
    last = before[-1][1]
    named = {
        "metrics": "epoch end (metrics)",
        "tensorboard": "epoch end (TensorBoard)",
        "end": "after the loop (final writes)",
    }
    return named.get(last, "steps")


def predictions(project: Path, run_dir: Path, out: Path) -> bytes:
    """`modelspec predict` of the run on the project's inputs (in-process): the raw bytes
    of the output arrays."""
    from typer.testing import CliRunner

    from modelspec.cli import app

    result = CliRunner().invoke(
        app,
        ["predict", str(project / "spec.yaml"), "--run-dir", str(run_dir), "--input",
         str(project / "x.npz"), "--output", str(out)],
    )  # fmt: skip
    if result.exit_code != 0:
        raise AssertionError(f"predict of {run_dir} failed: {result.output}")
    with np.load(out) as arrays:
        return b"".join(arrays[k].tobytes() for k in sorted(arrays.files))
