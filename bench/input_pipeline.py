"""Input-pipeline bench: images decoded + resized per second by the prefetching pipeline
alone (1, 2 and all workers), against the images per second the training steps consume,
for the digits-folder example streamed from its PNG files (and a synthetic folder of
64x64 RGB JPEGs). Not a timed test: one run, same machine, ratios.

Augmentation (`RandomRotation`, `RandomFlip`, ...) is part of the model in modelspec:
those layers run on the devices inside the jitted step, so the host pipeline only reads,
decodes and resizes, and their cost is in the step rate, not in the pipeline rate.

The step rate is measured on batches already on the devices (steady state, compile
excluded), i.e. the rate the pipeline has to sustain so the step never waits. Also
measured: the same batches through grain (`MapDataset.to_iter_dataset` with as many
threads), the library the JAX ecosystem uses, to justify the plain thread pool.

    python bench/input_pipeline.py [--batches 40] [--jpegs 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "jax")

from modelspec.runtime.data.prefetch import Prefetcher, chunk_plan, default_workers  # noqa: E402

DIGITS = ROOT / "examples/digits_folder/cnn.yaml"


def jpeg_folder(root: Path, count: int) -> None:
    """`count` random 64x64 RGB JPEGs (smooth noise, so they compress like photos) in
    10 class folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"c{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.BILINEAR).save(folder / f"{i}.jpg")


def jpeg_spec(root: Path) -> Path:
    spec = root / "spec.yaml"
    spec.write_text("""\
name: jpeg-bench
seed: 0
data:
  train: {type: image_folder, directory: images, image_size: [64, 64], in_memory: false}
  batch_size: 64
model:
  inputs: {image: {shape: [64, 64, 3]}}
  layers:
    - {type: RandomFlip, mode: horizontal}
    - {type: Rescaling, scale: 0.00392156862745098}
    - {type: Conv2D, filters: 32, kernel_size: 3, padding: same, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: Conv2D, filters: 64, kernel_size: 3, padding: same, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: Conv2D, filters: 128, kernel_size: 3, padding: same, activation: relu}
    - {type: GlobalAveragePooling2D}
    - {type: Dense, units: 10}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
optimizer: {type: Adam, learning_rate: 0.001}
""")
    return spec


def batching(session) -> dict:
    d = session.spec.data
    return dict(batch_size=d.batch_size, shuffle=True, seed=0, drop_remainder=False)


def pipeline_rate(dataset, batch: dict, workers: int, batches: int) -> float:
    """Images per second the prefetcher alone delivers (host batches, no device copy)."""
    steps = dataset.num_batches(batch["batch_size"], False)
    plan = list(chunk_plan(steps, 1, 10**6, 0, 0))[: batches + 2]
    with Prefetcher(dataset, iter(plan), batching=batch, stacked=False, workers=workers) as p:
        p.get(plan[0])  # threads started, first batch out
        t0 = time.perf_counter()
        for chunk in plan[1 : batches + 1]:
            p.get(chunk)
        seconds = time.perf_counter() - t0
    return batches * batch["batch_size"] / seconds


def grain_rate(dataset, batch: dict, workers: int, batches: int) -> float:
    """The same batches through grain's threaded MapDataset -> IterDataset."""
    import grain

    size = batch["batch_size"]
    steps = dataset.num_batches(size, False)
    ds = (
        grain.MapDataset.range(min(steps, batches + 2))
        .map(lambda i: dataset.batch(0, int(i) % steps, **batch))
        .to_iter_dataset(grain.ReadOptions(num_threads=workers, prefetch_buffer_size=2 * workers))
    )
    it = iter(ds)
    next(it)
    t0 = time.perf_counter()
    for _ in range(min(steps, batches + 2) - 2):
        next(it)
    return (min(steps, batches + 2) - 2) * size / (time.perf_counter() - t0)


def step_rate(session, dataset, batch: dict, steps: int = 30) -> float:
    """Images per second the jitted train step consumes, batches already on device."""
    import jax

    from modelspec.compiler.sharding.mesh import put_batch

    host = dataset.batch(0, 0, **batch)
    device = put_batch(session.dist, host)
    state = session.train_step(session.state, device)  # compile
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(steps):
        state = session.train_step(state, device)
    jax.block_until_ready(state)
    return steps * batch["batch_size"] / (time.perf_counter() - t0)


def bench(name: str, spec: Path, overrides: list[str], batches: int) -> None:
    from modelspec.runtime.session import open_session

    session = open_session(str(spec), overrides)
    dataset, batch = session.data.train, batching(session)
    every = default_workers()
    counts = sorted({1, min(2, every), every})
    rates = {w: pipeline_rate(dataset, batch, w, batches) for w in counts}
    grain = grain_rate(dataset, batch, every, batches)
    steps = step_rate(session, dataset, batch)
    print(f"\n{name}: {len(dataset)} images, batch {batch['batch_size']}, {dataset.inputs}")
    for w, r in rates.items():
        print(f"  pipeline, {w:2d} worker(s): {r:10.0f} images/s")
    print(f"  grain,    {every:2d} thread(s): {grain:10.0f} images/s")
    print(f"  train step consumes:   {steps:10.0f} images/s")
    print(f"  ratio pipeline({every}) / step: {rates[every] / steps:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--jpegs", type=int, default=3000, help="0: skip the JPEG folder")
    args = parser.parse_args()
    import jax

    print(f"{os.cpu_count()} CPUs; devices: {jax.devices()}")
    bench(
        "digits_folder (32x32 grayscale PNG)", DIGITS, ["data.train.in_memory=false"], args.batches
    )
    if args.jpegs:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            jpeg_folder(root / "images", args.jpegs)
            bench(f"synthetic {args.jpegs} JPEGs (64x64 RGB)", jpeg_spec(root), [], args.batches)


if __name__ == "__main__":
    main()
