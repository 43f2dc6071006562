"""Training throughput: modelspec's `train()` vs a hand-written `jax.jit` + optax loop.

Both train the same model (same layers, same Adam, same batches: a host-side random
permutation per epoch, batches sliced from numpy arrays and fed to a jitted, donated
step). Steady-state samples/s is the median epoch time after the first (compile) epoch;
modelspec's epoch time is measured inside its real trainer loop and excludes validation
and checkpoint writes, the hand-written loop has neither. Time to first step covers
building/compiling through the first finished step.

    python bench/train_throughput.py [--epochs 4] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import yaml

from modelspec.runtime.trainer import train


def _case(x: tuple, batch: int, batches: int, layers: list[dict], classes: int = 10) -> dict:
    """A benchmark model on `x`-shaped inputs: `batches` batches of `batch` samples per
    epoch, `classes` classes."""
    return dict(x=x, classes=classes, batch=batch, n=batch * batches, layers=layers)


def _layer(type_: str, **fields) -> dict:
    """A layer mapping as a spec writes it (`{type: Dense, units: 10}`)."""
    return {"type": type_, **fields}


CASES = {
    "tiny MLP 16-32-10 (batch 32)": _case(
        (16,),
        32,
        600,
        [_layer("Dense", units=32, activation="relu"), _layer("Dense", units=10)],
    ),
    "MLP 784-512-512-10 (batch 128)": _case(
        (784,),
        128,
        120,
        [
            _layer("Dense", units=512, activation="relu"),
            _layer("Dense", units=512, activation="relu"),
            _layer("Dense", units=10),
        ],
    ),
    "digits CNN (batch 64)": _case(
        (64,),
        64,
        150,
        [
            _layer("Rescaling", scale=0.0625),
            _layer("Reshape", target_shape=[8, 8, 1]),
            _layer("Conv2D", filters=32, kernel_size=3, padding="same", activation="relu"),
            _layer("MaxPooling2D", pool_size=2),
            _layer("Conv2D", filters=64, kernel_size=3, padding="same", activation="relu"),
            _layer("GlobalAveragePooling2D"),
            _layer("Dense", units=10),
        ],
    ),
    "LSTM(128) x 32 steps (batch 32)": _case(
        (32, 16), 32, 60, [_layer("LSTM", units=128), _layer("Dense", units=10)]
    ),
}


def make_spec(case: dict, data_path: Path, epochs: int, spe: int = 1) -> dict:
    return {
        "modelspec": 1,
        "name": "bench",
        "seed": 0,
        "data": {
            "train": {"type": "npz", "path": str(data_path)},
            "batch_size": case["batch"],
            "shuffle": True,
        },
        "model": {"inputs": {"x": {"shape": list(case["x"])}}, "layers": case["layers"]},
        "loss": {"type": "SparseCategoricalCrossentropy", "from_logits": True},
        "optimizer": {"type": "Adam", "learning_rate": 0.001},
        "train": {
            "epochs": epochs,
            "steps_per_execution": spe,
            "terminate_on_nan": False,
            "log_every_steps": 10**9,
        },
        # the hand-written loop writes no checkpoints; modelspec writes only the final one
        "checkpoint": {"save_at_epoch_end": False},
    }


def modelspec_run(case, data_path, epochs, spe=1):
    spec = make_spec(case, data_path, epochs, spe)
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec))
        t0 = time.perf_counter()
        first = train(spec_file, Path(tmp) / "run", progress=False, max_steps=1)
        jax.block_until_ready(first.state.params)
        ttfs = time.perf_counter() - t0
        history = train(spec_file, Path(tmp) / "run2", progress=False)
    return statistics.median(history.summary["epoch_seconds"][1:]), ttfs


def _dense(key, n_in, n_out):
    return {
        "w": jax.random.normal(key, (n_in, n_out)) * (2.0 / (n_in + n_out)) ** 0.5,
        "b": jnp.zeros((n_out,)),
    }


def hand_model(name: str, case: dict):
    """(init params, apply) written directly in JAX: the baseline a user would write."""
    keys = jax.random.split(jax.random.key(0), 8)
    if "MLP" in name:
        sizes = [case["x"][0]] + [layer["units"] for layer in case["layers"]]
        params = [_dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=False)]

        def apply(p, x):
            for layer in p[:-1]:
                x = jax.nn.relu(x @ layer["w"] + layer["b"])
            return x @ p[-1]["w"] + p[-1]["b"]

        return params, apply
    if "CNN" in name:
        params = {
            "c1": jax.random.normal(keys[0], (3, 3, 1, 32)) * 0.2,
            "b1": jnp.zeros(32),
            "c2": jax.random.normal(keys[1], (3, 3, 32, 64)) * 0.05,
            "b2": jnp.zeros(64),
            "out": _dense(keys[2], 64, 10),
        }
        dn = ("NHWC", "HWIO", "NHWC")

        def apply(p, x):
            x = (x * 0.0625).reshape(-1, 8, 8, 1)
            x = jax.nn.relu(
                jax.lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=dn)
                + p["b1"]
            )
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
            x = jax.nn.relu(
                jax.lax.conv_general_dilated(x, p["c2"], (1, 1), "SAME", dimension_numbers=dn)
                + p["b2"]
            )
            x = x.mean(axis=(1, 2))
            return x @ p["out"]["w"] + p["out"]["b"]

        return params, apply
    units, feat = 128, case["x"][1]
    params = {
        "k": jax.random.normal(keys[0], (feat, 4 * units)) * 0.1,
        "r": jax.random.normal(keys[1], (units, 4 * units)) * 0.05,
        "b": jnp.zeros(4 * units),
        "out": _dense(keys[2], units, 10),
    }

    def apply(p, x):
        def cell(carry, xt):
            h, c = carry
            z = xt @ p["k"] + h @ p["r"] + p["b"]
            i, f, g, o = jnp.split(z, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        zeros = jnp.zeros((x.shape[0], units))
        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
        return h @ p["out"]["w"] + p["out"]["b"]

    return params, apply


def handwritten_run(name, case, x, y, epochs):
    t0 = time.perf_counter()
    params, apply = hand_model(name, case)
    tx = optax.adam(0.001, eps=1e-7)
    opt_state = tx.init(params)

    def step(p, o, xb, yb):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(apply(p, xb), yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    step = jax.jit(step, donate_argnums=(0, 1))
    bs, n = case["batch"], len(x)
    times, first = [], None
    for epoch in range(epochs):
        e0 = time.perf_counter()
        perm = np.random.default_rng([0, epoch]).permutation(n)
        for i in range(n // bs):
            idx = perm[i * bs : (i + 1) * bs]
            params, opt_state, loss = step(params, opt_state, x[idx], y[idx])
            if first is None:
                jax.block_until_ready(loss)
                first = time.perf_counter() - t0
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - e0)
    return statistics.median(times[1:]), first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device(s))")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in CASES.items():
            n = case["n"] // (4 if args.quick else 1)
            rng = np.random.default_rng(0)
            x = rng.normal(size=(n, *case["x"])).astype("float32")
            y = rng.integers(0, case["classes"], n).astype("int32")
            path = Path(tmp) / f"{len(rows)}.npz"
            np.savez(path, x=x, y=y)
            hand_s, hand_ttfs = handwritten_run(name, case, x, y, args.epochs)
            ms_s, ms_ttfs = modelspec_run(case, path, args.epochs)
            samples = (n // case["batch"]) * case["batch"]
            rows.append((name, samples / hand_s, samples / ms_s, hand_ttfs, ms_ttfs))
            if name.startswith("tiny"):
                spe_s, _ = modelspec_run(case, path, args.epochs, spe=8)
                rows.append(
                    (
                        name + ", steps_per_execution=8",
                        samples / hand_s,
                        samples / spe_s,
                        None,
                        None,
                    )
                )
    print()
    print(
        "| model | hand-written samples/s | modelspec samples/s | ratio | first step: hand / modelspec |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, hand, ms, ht, mt in rows:
        first = f"{ht:.2f}s / {mt:.2f}s" if ht is not None else "-"
        print(f"| {name} | {hand:,.0f} | {ms:,.0f} | {ms / hand:.2f} | {first} |")


if __name__ == "__main__":
    main()
