"""Crash consistency and resource guards, CI-sized (issue 12, must-shows 2 and 3).

Three seeded SIGKILLs of `modelspec train` on one run directory — right after a step's
dispatch, with an async checkpoint save in flight, halfway through a metrics line — each
followed by a rerun of the same command: the final predictions and metrics.jsonl are
bit-identical to an uninterrupted run's. (`bench/reliability.py crash` does the same with
20+ kills timed over the whole run.) The processes share a JAX compilation cache so that
five trainings fit the CI budget; the cache holds the same executables a fresh compile
gives. Then the absurd specs of the issue are refused by check, summary and train in
under a second, before anything is allocated, naming the bytes per device and the fix.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec import load
from modelspec.cli import app
from modelspec.runtime.runlog import MetricsLog
from tests.reliability import crash

SEED = 12


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax-cache"))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    return crash.make_project(tmp_path / "project")


def test_three_seeded_sigkills_then_reruns_are_bit_identical(project, tmp_path):
    with ThreadPoolExecutor(1) as pool:  # the uninterrupted run beside the first kill
        uninterrupted = pool.submit(crash.train, project, tmp_path / "full")
        rng = random.Random(SEED)
        # counted within each process: a resumed run starts its counts again at 1
        kills = [f"step:{rng.randint(2, 12)}", f"save:{rng.randint(1, 2)}", f"metrics:{rng.randint(1, 2)}"]  # fmt: skip
        run = tmp_path / "run"
        first = crash.train(project, run, crash_at=kills[0])
        full = uninterrupted.result()
    assert full.returncode == 0, full.output
    moments = [m for _, m, _ in full.events]
    assert moments.count("step") > 12 and moments.count("save") > 2
    for i, at in enumerate(kills):
        cut = first if i == 0 else crash.train(project, run, crash_at=at)
        assert cut.returncode == -9, (at, cut.output)  # killed inside that moment
        moment, n = at.split(":")
        assert (cut.events[-1][1], cut.events[-1][2]) == (moment, int(n))
    checkpoints = {p.name for p in (run / "checkpoints").iterdir()}
    assert any("tmp" in name for name in checkpoints)  # the last kill left a save half done
    final = crash.train(project, run)
    assert final.returncode == 0, final.output
    assert "Resuming from step" in final.output and "Traceback" not in final.output
    assert (run / "metrics.jsonl").read_bytes() == (tmp_path / "full/metrics.jsonl").read_bytes()
    assert crash.predictions(project, run, tmp_path / "a.npz") == crash.predictions(
        project, tmp_path / "full", tmp_path / "b.npz"
    )


def test_a_kill_while_metrics_jsonl_is_rewritten_loses_no_line(tmp_path, monkeypatch):
    """Regression (found by the crash suite): on resume, metrics.jsonl was rewritten in
    place; a kill halfway left half of it, and the rerun lost the epochs cut off."""
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for epoch in range(1, 4):
        log.append({"epoch": epoch, "loss": 1.0 / epoch})
    before = log.path.read_bytes()

    def killed(*args, **kwargs):
        raise SystemExit("SIGKILL")  # the process ends here: nothing after it runs

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(SystemExit):
        log.truncate(2)
    assert log.path.read_bytes() == before  # the old log is whole
    monkeypatch.undo()
    log.truncate(2)
    assert [r["epoch"] for r in log.read()] == [1, 2]


# -- resource guards ---------------------------------------------------------------------------

HEAD = "modelspec: 1\nname: absurd\ndata: {train: {type: sklearn, name: iris}, batch_size: 8}\n"
TAIL = "loss: sparse_categorical_crossentropy\noptimizer: Adam\n"
ABSURD = {
    "units_1e12": (
        "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n"
        "    - {type: Dense, units: 1000000000000}\n    - {type: Dense, units: 3}\n",
        "7:7: model.layers[0]: training needs at least 145.52 TB per device (parameters "
        "29.10 TB, gradients 29.10 TB, optimizer state 58.21 TB",
        "lower data.batch_size, or shard parameters over more devices",
    ),
    "embedding_1e10_rows": (
        "model:\n  inputs: {x: {shape: [4], dtype: int32}}\n  layers:\n"
        "    - {type: Embedding, input_dim: 10000000000, output_dim: 8}\n"
        "    - {type: GlobalAveragePooling1D}\n    - {type: Dense, units: 3}\n",
        "7:7: model.layers[0]: training needs at least 1.16 TB per device (parameters 298.02 GB",
        "The largest layer is 'embedding' with 80,000,000,000 parameters",
    ),
    "repeat_1e6": (
        "blocks:\n  b: {layers: [{type: Dense, units: 4}]}\n"
        "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n"
        "    - {type: b, repeat: 1000000}\n    - {type: Dense, units: 3}\n",
        "9:14: model.layers[0].type: this use of block 'b' expands to 1,000,000 layers; a "
        "model may have at most 10,000",
        "Lower `repeat` here or in the blocks it uses.",
    ),
}


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The commands' modules imported once: the timing is of the refusal, not of Python
    importing pydantic models (and the train command's JAX) the first time."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "ok.yaml").write_text(
        HEAD
        + "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n    - {type: Dense, units: 3}\n"
        + TAIL
    )
    load(folder / "ok.yaml")
    import modelspec.runtime.trainer  # noqa: F401 - what `train` imports first
    from modelspec.compiler import summary  # noqa: F401


@pytest.mark.parametrize("command", ["check", "summary", "train"])
@pytest.mark.parametrize("case", list(ABSURD))
def test_absurd_specs_are_refused_in_under_a_second_before_allocating(
    tmp_path, warm, case, command
):
    model, where, fix = ABSURD[case]
    spec = tmp_path / "absurd.yaml"
    spec.write_text(HEAD + model + TAIL)
    run_dir = tmp_path / "run"
    extra = ["--run-dir", str(run_dir)] if command == "train" else []
    started = time.perf_counter()
    result = CliRunner().invoke(app, [command, str(spec), *extra])
    seconds = time.perf_counter() - started
    assert result.exit_code == 2, result.output
    assert seconds < 1, seconds
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{spec}:{where}"), first
    assert fix in first
    assert not run_dir.exists()  # refused before the run directory, the lock or devices


def test_the_memory_refusal_is_per_device_of_the_specs_mesh(tmp_path):
    """The fix it names works: sharding parameters and batch over an `fsdp` axis of 8
    divides the figures (still refused here: 10**12 units stay absurd)."""
    spec = tmp_path / "absurd.yaml"
    spec.write_text(
        HEAD + "model:\n  inputs: {x: {shape: [8]}}\n  layers:\n"
        "    - {type: Dense, units: 1000000000000}\n    - {type: Dense, units: 8}\n" + TAIL
    )
    lines = []
    for extra in ([], ["--set", "distribution={mesh: {fsdp: 8}}"]):
        result = CliRunner().invoke(app, ["check", str(spec), *extra])
        assert result.exit_code == 2
        lines.append(result.stderr.splitlines()[0])
    assert "needs at least 276.49 TB per device (parameters 61.85 TB" in lines[0]
    assert "needs at least 47.29 TB per device (parameters 10.91 TB" in lines[1]
    assert "activations 3.64 TB at 1 examples per device" in lines[1]
