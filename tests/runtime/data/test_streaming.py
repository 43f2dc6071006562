"""Streaming image folders and the prefetching input pipeline: streamed batches equal
the in-memory ones, prefetched chunks equal synchronous batches (stacked, and per
process), bad files are named before step 1 (headers) or mid-run (pixels), streamed
data never goes to the devices whole, workers close cleanly, and a SIGKILLed streaming
run resumes bit-identically."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from modelspec.errors import DataError
from modelspec.runtime.checkpoint import Checkpointer
from modelspec.runtime.data import image_folder
from modelspec.runtime.data.dataset import ArrayDataset, load_data
from modelspec.runtime.data.image_stream import ImageFiles
from modelspec.runtime.data.prefetch import Chunk, Prefetcher, chunk_plan, local_rows
from modelspec.runtime.session import open_session
from modelspec.schema.data import DataSpec
from modelspec.schema.tensors import TensorType
from tests.conftest import ROOT

DIGITS = ROOT / "examples/digits_folder/images"
PER_CLASS = 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """200 of the digits PNGs (20 per class) in a spec folder of their own."""
    root = tmp_path_factory.mktemp("stream")
    for label in range(10):
        dest = root / "images" / str(label)
        dest.mkdir(parents=True)
        for png in sorted((DIGITS / str(label)).glob("*.png"))[:PER_CLASS]:
            shutil.copy(png, dest / png.name)
    return root


def load(root: Path, in_memory, dtype: str = "float32", **data):
    spec = DataSpec.model_validate(
        {
            "train": {
                "type": "image_folder",
                "directory": "images",
                "color_mode": "grayscale",
                "image_size": [12, 12],
                "in_memory": in_memory,
            },
            "validation_split": 0.2,
            **data,
        }
    )
    return load_data(
        spec,
        model_inputs={"image": TensorType((None, 12, 12, 1), dtype)},
        model_outputs={"probs": TensorType((None, 10))},
        losses={"probs": {"type": "SparseCategoricalCrossentropy"}},
        seed=0,
        base_dir=root,
        locate=lambda path, key=False: (str(root / "spec.yaml"), 3, 5),
    )


BATCHING = dict(batch_size=24, shuffle=True, seed=5, drop_remainder=False)


def assert_batches_equal(a, b):
    assert a.keys() == b.keys()
    for group in ("inputs", "targets"):
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            x, y = a[group][name], b[group][name]
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["mask"], b["mask"])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_streamed_batches_equal_in_memory_batches(folder, dtype):
    memory, stream = load(folder, True, dtype), load(folder, False, dtype)
    assert isinstance(memory.train.inputs["image"], np.ndarray)
    assert isinstance(stream.train.inputs["image"], ImageFiles)
    assert str(stream.train.inputs["image"].dtype) == dtype
    for split in ("train", "validation"):
        m, s = getattr(memory, split), getattr(stream, split)
        assert len(m) == len(s) and m.num_batches(24, False) == s.num_batches(24, False)
        for epoch in (0, 3):
            for index in range(s.num_batches(24, False)):  # incl. the padded last batch
                assert_batches_equal(
                    m.batch(epoch, index, **BATCHING), s.batch(epoch, index, **BATCHING)
                )


def test_auto_streams_only_over_the_memory_cap(folder, monkeypatch):
    assert isinstance(load(folder, "auto").train.inputs["image"], np.ndarray)
    monkeypatch.setattr(image_folder, "MAX_IMAGE_BYTES", 1000)
    assert isinstance(load(folder, "auto").train.inputs["image"], ImageFiles)
    with pytest.raises(DataError) as info:
        load(folder, True)
    assert "in_memory: auto" in str(info.value)


def sync_chunk(dataset, chunk: Chunk, stacked: bool, part=(0, 1)):
    """What the loop built before prefetching: `ArrayDataset.batch`, stacked, and the
    rows `put_batch` keeps on process `part`."""
    rows = local_rows(BATCHING["batch_size"], part)
    batches = [dataset.batch(chunk.epoch, chunk.index + i, **BATCHING) for i in range(chunk.count)]
    cut = [jax.tree_util.tree_map(lambda x: x[rows], b) for b in batches]
    if not stacked:
        return cut[0]
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *cut)


def in_memory_dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset(
        {"x": rng.normal(size=(101, 3)).astype(np.float32), "ids": np.arange(101)},
        {"y": rng.integers(0, 4, 101).astype(np.int32)},
    )


@pytest.mark.parametrize("kind", ["memory", "stream"])
@pytest.mark.parametrize("spe", [1, 3])
def test_prefetched_chunks_equal_synchronous_batches(folder, kind, spe):
    dataset = in_memory_dataset() if kind == "memory" else load(folder, False).train
    steps = dataset.num_batches(24, False)
    plan = list(chunk_plan(steps, spe, 3, 1, 2))  # resumed at epoch 1, batch 2
    assert plan[0] == Chunk(1, 2, min(spe, steps - 2)) and plan[-1].epoch == 2
    assert sum(c.count for c in plan) == 2 * steps - 2
    with Prefetcher(dataset, iter(plan), batching=BATCHING, stacked=spe > 1, workers=3) as p:
        for chunk in plan:
            assert_batches_equal(p.get(chunk), sync_chunk(dataset, chunk, spe > 1))
        with pytest.raises(ValueError, match="past the end"):
            p.get(Chunk(3, 0, 1))


@pytest.mark.parametrize("nproc", [2, 3])
def test_each_process_builds_only_its_rows_and_together_the_batch(folder, nproc):
    dataset = load(folder, False).train
    plan = list(chunk_plan(dataset.num_batches(24, False), 1, 1, 0, 0))
    decoded: list[list[str]] = []
    parts = []
    for pid in range(nproc):
        files = dataset.inputs["image"]
        seen: list[str] = []
        original = files.read_into

        def spy(rows, out, _seen=seen, _original=original, _files=files.files):
            _seen += [_files[int(r)] for r in rows]
            _original(rows, out)

        files.read_into = spy
        with Prefetcher(
            dataset, iter(plan), batching=BATCHING, stacked=False, part=(pid, nproc)
        ) as p:
            parts.append([p.get(c) for c in plan])
        del files.read_into
        decoded.append(seen)
    per = 24 // nproc
    for i, chunk in enumerate(plan):
        whole = dataset.batch(chunk.epoch, chunk.index, **BATCHING)
        joined = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *[p[i] for p in parts])
        n = per * nproc  # put_batch's split: batch_size divisible by the process count
        assert_batches_equal(joined, jax.tree_util.tree_map(lambda x, n=n: x[:n], whole))
    order = dataset.order(0, shuffle=True, seed=5)
    for pid, seen in enumerate(decoded):  # each process read only its files
        want = []
        for index in range(len(plan)):
            rows = np.resize(order[index * 24 : (index + 1) * 24], 24)[pid * per : (pid + 1) * per]
            want += [dataset.inputs["image"].files[r] for r in rows]
        assert sorted(seen) == sorted(want)


def test_bad_file_headers_are_named_before_step_one(folder, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(folder / "images", root / "images")
    (root / "images" / "3" / "fake.png").write_bytes(b"not an image")
    with pytest.raises(DataError) as info:
        load(root, False)
    diag = info.value.diagnostics[0]  # then load_data's "0 samples" for the split
    assert diag.path == "data.train.directory" and (diag.line, diag.col) == (3, 5)
    assert "cannot read image" in diag.message and "fake.png" in diag.message


def test_file_damaged_after_the_check_fails_mid_run_naming_it(folder, tmp_path):
    root = tmp_path / "late"
    shutil.copytree(folder / "images", root / "images")
    dataset = load(root, False).train
    victim = Path(dataset.inputs["image"].files[dataset.order(0, shuffle=True, seed=5)[30]])
    victim.write_bytes(victim.read_bytes()[:60])  # the header parses, the pixels do not
    plan = list(chunk_plan(dataset.num_batches(24, False), 1, 1, 0, 0))
    with Prefetcher(dataset, iter(plan), batching=BATCHING, stacked=False) as p:
        p.get(plan[0])  # rows 0..23 are intact
        with pytest.raises(DataError) as info:
            p.get(plan[1])
    message = info.value.diagnostics[0].format()
    assert message.startswith(f"{root / 'spec.yaml'}:3:5: data.train.directory: ")
    assert str(victim) in message and "read while training" in message


def test_streaming_refuses_integer_inputs_positioned(folder):
    with pytest.raises(DataError) as info:
        load(folder, False, "uint8")
    diag = info.value.diagnostics[0]  # then load_data's "0 samples" for the split
    assert diag.path == "data.train.in_memory"
    assert "streamed images feed a float model input" in diag.message
    assert diag.received == "uint8"


def test_workers_stop_on_close_and_on_failure(folder):
    dataset = load(folder, False).train
    before = {t for t in threading.enumerate() if t.name.startswith("modelspec-")}
    plan = chunk_plan(dataset.num_batches(24, False), 1, 10**6, 0, 0)  # endless
    p = Prefetcher(dataset, plan, batching=BATCHING, stacked=False, workers=2, depth=3)
    p.get(Chunk(0, 0, 1))
    p.close()
    p.close()  # idempotent
    boom = Prefetcher(
        dataset,
        iter([Chunk(0, 0, 1)]),
        batching=BATCHING,
        stacked=False,
        put=lambda batch: 1 / 0,
    )
    with pytest.raises(ZeroDivisionError):
        boom.get(Chunk(0, 0, 1))
    boom.close()
    after = {t for t in threading.enumerate() if t.name.startswith("modelspec-")}
    assert after <= before


SPEC = """\
name: stream-cnn
seed: 0
data:
  train: {type: image_folder, directory: images, color_mode: grayscale, image_size: [12, 12], in_memory: false}
  validation_split: 0.2
  batch_size: 16
  workers: 2
model:
  inputs: {image: {shape: [12, 12, 1]}}
  layers:
    - {type: RandomFlip, mode: horizontal}
    - {type: Rescaling, scale: 0.00392156862745098}
    - {type: Conv2D, filters: 8, kernel_size: 3, activation: relu}
    - {type: GlobalAveragePooling2D}
    - {type: Dropout, rate: 0.1}
    - {type: Dense, units: 10}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
metrics: [accuracy]
optimizer: {type: Adam, learning_rate: 0.01}
train: {epochs: 4}
checkpoint: {save_every_steps: 4}
"""


def test_streamed_data_stays_on_the_host(folder):
    from modelspec.runtime.device_data import resident_data

    (folder / "spec.yaml").write_text(SPEC)
    session = open_session(str(folder / "spec.yaml"))  # 160 images: would fit the devices
    assert isinstance(session.data.train.inputs["image"], ImageFiles)
    assert resident_data(session, session.data.train, **BATCHING) is None


ENV = {
    **os.environ,
    "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(ROOT),
}


def test_sigkill_mid_epoch_then_rerun_is_bit_identical(folder):
    """Must-show 4 on a streamed image folder: kill -9 mid-epoch, rerun the same
    command: the same final weights (so the same predictions) and metrics.jsonl."""
    (folder / "spec.yaml").write_text(SPEC)

    def cmd(run):
        return [sys.executable, "-m", "modelspec", "train", str(folder / "spec.yaml"), "--run-dir", str(run)]  # fmt: skip

    full, cut = folder / "full", folder / "cut"
    whole = subprocess.Popen(cmd(full), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = subprocess.Popen(cmd(cut), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckdir, deadline = cut / "checkpoints", time.time() + 120
    while time.time() < deadline:
        steps = [int(p.name) for p in ckdir.glob("*") if p.name.isdigit()] if ckdir.exists() else []
        if any(s >= 8 for s in steps):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpt = Checkpointer(ckdir, max_to_keep=None, async_save=False)
    killed_at = ckpt.latest_step()
    meta = ckpt.read_meta(killed_at)
    ckpt.close()
    assert not meta["finished"] and meta["next_batch"] > 0, meta  # mid-epoch
    rerun = subprocess.run(cmd(cut), env=ENV, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Resuming from step {killed_at}" in rerun.stdout
    assert whole.wait(timeout=120) == 0, whole.stderr.read()

    session = open_session(str(folder / "spec.yaml"))
    images = session.data.validation.batch(0, 0, 16, shuffle=False, seed=0, drop_remainder=False)
    predictions = []
    for run in (full, cut):
        ckpt = Checkpointer(run / "checkpoints", max_to_keep=None, async_save=False)
        step = ckpt.latest_step()
        assert ckpt.read_meta(step)["finished"]
        state, _ = ckpt.restore(step, session.state)
        ckpt.close()
        predictions.append(np.asarray(session.predict_step(state, images["inputs"])["dense"]))
    np.testing.assert_array_equal(predictions[0], predictions[1])
    lines = [(run / "metrics.jsonl").read_text().splitlines() for run in (full, cut)]
    assert len(lines[0]) == 4 and lines[0] == lines[1]
    assert all(np.isfinite(json.loads(line)["val_loss"]) for line in lines[0])


def test_validation_batches_are_decoded_ahead_by_the_workers(folder):
    """Evaluation reads its batches through the prefetching pipeline: streamed
    validation images decode on the data workers, never on the evaluating thread,
    and the metrics equal those of batches built one by one on that thread."""
    from modelspec.compiler.sharding.mesh import put_batch
    from modelspec.runtime.evaluation import evaluate_dataset, fresh_metrics, to_host

    (folder / "spec.yaml").write_text(SPEC)
    session = open_session(str(folder / "spec.yaml"))
    val, state = session.data.validation, session.state
    images = val.inputs["image"]
    assert isinstance(images, ImageFiles) and val.num_batches(16, False) > 1
    threads: set[str] = set()
    original = images.read_into

    def spy(rows, out):
        threads.add(threading.current_thread().name)
        original(rows, out)

    images.read_into = spy
    try:
        got = evaluate_dataset(session, state, val, 16)
    finally:
        del images.read_into
    assert threads and all(t.startswith("modelspec-data") for t in threads), threads
    metrics = fresh_metrics(session)
    for i in range(val.num_batches(16, False)):
        batch = val.batch(0, i, 16, shuffle=False, seed=0, drop_remainder=False)
        metrics = session.eval_step(state, metrics, put_batch(session.dist, batch))
    assert got == to_host(session.objective.results(metrics))
