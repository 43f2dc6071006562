"""modelspec `train` vs Keras 3 (JAX backend) `fit` vs a hand-written jitted loop.

Same model, same data (in-memory random arrays, seed 0), same batch size, same
optimizer (Adam 1e-3, eps 1e-7), same loss (sparse categorical cross-entropy from
logits), shuffled every epoch, no metrics, no validation. Every (framework, model,
steps_per_execution) measurement runs in its own fresh process, so the time to first
step is a cold one in each: it is measured after the imports, from building the model
(modelspec: the `train` call, which loads the spec and the data) to the first dispatch's
results on the host, compile included (modelspec: `summary["first_step_seconds"]`;
Keras: the first `on_train_batch_end`, its loss read; so neither counts the end of the
run, e.g. modelspec's final checkpoint and curves.png). Steady-state samples/s is the median epoch after the first (compile) epoch.
The configurations are run `--reps` times interleaved (a machine that is busy for a
while hurts all frameworks alike) and the table shows medians.

    python bench/vs_keras.py [--reps 3] [--epochs 4] [--only tiny,mlp] [--spe 1,8]
        [--before DIR]   # also run the modelspec package found in DIR (an old checkout)

modelspec runs with its defaults (log_every_steps 50, terminate_on_nan) except that it
writes no per-epoch checkpoint (Keras's fit writes none); the final one is written.

Keras's `steps_per_execution` on JAX loops over jitted single steps in Python; the
hand-written loop is measured without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import _case, _layer  # noqa: E402

TRANSFORMER = [
    {"name": "embed", "type": "Embedding", "input_dim": 1000, "output_dim": 64},
    {
        "name": "attn",
        "type": "MultiHeadAttention",
        "num_heads": 4,
        "key_dim": 16,
        "inputs": {"query": "embed", "value": "embed"},
    },
    {"name": "res1", "type": "Add", "inputs": ["embed", "attn"]},
    {"name": "ln1", "type": "LayerNormalization", "epsilon": 1e-6},
    {"name": "ff1", "type": "Dense", "units": 128, "activation": "relu"},
    {"name": "ff2", "type": "Dense", "units": 64},
    {"name": "res2", "type": "Add", "inputs": ["ln1", "ff2"]},
    {"name": "ln2", "type": "LayerNormalization", "epsilon": 1e-6},
    {"name": "pool", "type": "GlobalAveragePooling1D"},
    {"name": "logits", "type": "Dense", "units": 10},
]

CASES = {
    "tiny": (
        "tiny MLP 16-32-10 (batch 32)",
        _case(
            (16,),
            32,
            600,
            [_layer("Dense", units=32, activation="relu"), _layer("Dense", units=10)],
        ),
    ),
    "mlp": (
        "MLP 784-512-512-10 (batch 128)",
        _case(
            (784,),
            128,
            120,
            [
                _layer("Dense", units=512, activation="relu"),
                _layer("Dense", units=512, activation="relu"),
                _layer("Dense", units=10),
            ],
        ),
    ),
    "cnn": (
        "digits CNN (batch 64)",
        _case(
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
    ),
    "lstm": (
        "LSTM(128) x 32 steps (batch 32)",
        _case((32, 16), 32, 60, [_layer("LSTM", units=128), _layer("Dense", units=10)]),
    ),
    "transformer": (
        "transformer encoder, 32 tokens, d=64 (batch 32)",
        dict(_case((32,), 32, 100, TRANSFORMER), dtype="int32"),
    ),
}


def make_data(case: dict) -> tuple:
    """The case's arrays (deterministic: every process builds the same ones)."""
    import numpy as np

    rng = np.random.default_rng(0)
    if case.get("dtype") == "int32":
        x = rng.integers(0, 1000, size=(case["n"], *case["x"])).astype("int32")
    else:
        x = rng.normal(size=(case["n"], *case["x"])).astype("float32")
    return x, rng.integers(0, case["classes"], case["n"]).astype("int32")


# -- workers (one fresh process each) ---------------------------------------------------
def _modelspec(case: dict, epochs: int, spe: int, tmp: Path) -> tuple[float, float]:
    import jax
    import numpy as np
    import yaml
    from train_throughput import make_spec

    from modelspec.runtime.trainer import train

    x, y = make_data(case)
    np.savez(tmp / "data.npz", x=x, y=y)
    spec = make_spec(case, tmp / "data.npz", epochs, spe)
    if case.get("dtype"):
        spec["model"]["inputs"]["x"]["dtype"] = case["dtype"]
    for key in ("log_every_steps", "terminate_on_nan"):  # modelspec's defaults
        spec["train"].pop(key)
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    first = train(spec_file, tmp / "first", progress=False, max_steps=1)
    jax.block_until_ready(first.state.params)
    ttfs = first.summary["first_step_seconds"]  # from the call to the first results
    history = train(spec_file, tmp / "run", progress=False)
    return statistics.median(history.summary["epoch_seconds"][1:]), ttfs


def _keras_model(case: dict):
    import keras

    if case["layers"] is TRANSFORMER:
        tokens = keras.Input(case["x"], dtype="int32")
        h = keras.layers.Embedding(1000, 64)(tokens)
        a = keras.layers.MultiHeadAttention(num_heads=4, key_dim=16)(h, h)
        h = keras.layers.LayerNormalization(epsilon=1e-6)(keras.layers.Add()([h, a]))
        f = keras.layers.Dense(64)(keras.layers.Dense(128, activation="relu")(h))
        h = keras.layers.LayerNormalization(epsilon=1e-6)(keras.layers.Add()([h, f]))
        out = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling1D()(h))
        return keras.Model(tokens, out)
    layers = [
        getattr(keras.layers, spec["type"])(**{k: v for k, v in spec.items() if k != "type"})
        for spec in case["layers"]
    ]
    return keras.Sequential([keras.Input(case["x"]), *layers])


def _keras(case: dict, epochs: int, spe: int, tmp: Path) -> tuple[float, float]:
    import keras

    x, y = make_data(case)

    def compiled():
        model = _keras_model(case)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=spe,
        )
        return model

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not first:  # the first dispatch's results on the host (synced)
                float(logs["loss"])
                first.append(time.perf_counter() - t0)

    first: list[float] = []
    t0 = time.perf_counter()
    compiled().fit(
        x,
        y,
        batch_size=case["batch"],
        epochs=1,
        steps_per_epoch=1,
        verbose=0,
        callbacks=[FirstStep()],
    )
    ttfs = first[0]  # model built, compiled, first step's loss on the host

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # logs are host floats: synced
            times.append(time.perf_counter() - self.t)

    times: list[float] = []
    compiled().fit(
        x, y, batch_size=case["batch"], epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()]
    )
    return statistics.median(times[1:]), ttfs


def _hand(case: dict, epochs: int, spe: int, tmp: Path) -> tuple[float, float]:
    import train_throughput

    x, y = make_data(case)
    name = next(label for label, c in CASES.values() if c is case)
    if case["layers"] is TRANSFORMER:  # train_throughput knows MLP, CNN and LSTM
        train_throughput.hand_model = lambda _name, _case: hand_transformer()
    return train_throughput.handwritten_run(name, case, x, y, epochs)


def hand_transformer():
    """(init params, apply) of the transformer case written directly in JAX."""
    import jax
    import jax.numpy as jnp

    keys = iter(jax.random.split(jax.random.key(0), 16))

    def dense(n_in, n_out):
        w = jax.random.normal(next(keys), (n_in, n_out)) * (2.0 / (n_in + n_out)) ** 0.5
        return {"w": w, "b": jnp.zeros(n_out)}

    def norm():
        return {"g": jnp.ones(64), "b": jnp.zeros(64)}

    params = {
        "embed": jax.random.uniform(next(keys), (1000, 64), minval=-0.05, maxval=0.05),
        **{k: dense(64, 64) for k in ("q", "k", "v", "o")},
        "ln1": norm(),
        "ff1": dense(64, 128),
        "ff2": dense(128, 64),
        "ln2": norm(),
        "out": dense(64, 10),
    }

    def layer_norm(p, x):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-6) * p["g"] + p["b"]

    def apply(p, tokens):
        h = p["embed"][tokens]
        b, t = tokens.shape

        def heads(name):
            return (h @ p[name]["w"] + p[name]["b"]).reshape(b, t, 4, 16)

        q, k, v = heads("q") / 4.0, heads("k"), heads("v")
        att = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)
        a = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, t, 64)
        h = layer_norm(p["ln1"], h + a @ p["o"]["w"] + p["o"]["b"])
        f = jax.nn.relu(h @ p["ff1"]["w"] + p["ff1"]["b"]) @ p["ff2"]["w"] + p["ff2"]["b"]
        h = layer_norm(p["ln2"], h + f)
        return h.mean(axis=1) @ p["out"]["w"] + p["out"]["b"]

    return params, apply


WORKERS = {"modelspec": _modelspec, "keras": _keras, "hand": _hand, "before": _modelspec}


def worker(framework: str, key: str, spe: int, epochs: int) -> None:
    case = CASES[key][1]
    with tempfile.TemporaryDirectory() as tmp:
        epoch_s, ttfs = WORKERS[framework](case, epochs, spe, Path(tmp))
    samples = (case["n"] // case["batch"]) * case["batch"]
    print("RESULT " + json.dumps({"sps": samples / epoch_s, "ttfs": ttfs}), flush=True)


# -- driver ------------------------------------------------------------------------------
def measure(framework: str, key: str, spe: int, epochs: int, before: str | None) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", framework, key, str(spe), "--epochs", str(epochs)]
    env = {**os.environ}
    if framework == "before":  # the same bench, importing modelspec from the old checkout
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [before, env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"{framework} {key} spe={spe} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--spe", default="1,8")
    parser.add_argument("--frameworks", default="modelspec,keras,hand")
    parser.add_argument("--before", help="a checkout whose modelspec to run as well")
    parser.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "CASE", "SPE"))
    args = parser.parse_args()
    if args.worker:
        framework, key, spe = args.worker
        worker(framework, key, int(spe), args.epochs)
        return
    keys, spes = args.only.split(","), [int(s) for s in args.spe.split(",")]
    frameworks = args.frameworks.split(",") + (["before"] if args.before else [])
    configs = [
        (fw, key, spe)
        for key in keys
        for spe in spes
        for fw in frameworks
        if not (fw == "hand" and spe != 1)
    ]
    results: dict[tuple, list[dict]] = {c: [] for c in configs}
    for rep in range(args.reps):
        for config in configs:
            r = measure(*config, args.epochs, args.before)
            if r is not None:
                results[config].append(r)
                print(f"rep {rep + 1}: {config}: {r['sps']:,.0f}/s, first step {r['ttfs']:.2f}s")

    def med(fw, key, spe, field):
        values = [r[field] for r in results.get((fw, key, spe), [])]
        return statistics.median(values) if values else None

    print()
    cols = [fw for fw in ("before", "modelspec", "keras", "hand") if fw in frameworks]
    names = {"before": "modelspec before", "modelspec": "modelspec", "keras": "Keras fit"}
    names["hand"] = "hand-written"
    print(
        "| model | spe | "
        + " | ".join(f"{names[fw]} samples/s" for fw in cols)
        + " | modelspec / Keras | first step: "
        + " / ".join(names[fw] for fw in cols)
        + " |"
    )
    print("| --- | ---: |" + " ---: |" * (len(cols) + 2))
    for key in keys:
        for spe in spes:
            sps = {fw: med(fw, key, spe if fw != "hand" else 1, "sps") for fw in cols}
            first = {fw: med(fw, key, spe if fw != "hand" else 1, "ttfs") for fw in cols}
            ms, ks = sps.get("modelspec"), sps.get("keras")
            ratio = f"{ms / ks:.2f}" if ms and ks else "-"
            print(
                f"| {CASES[key][0]} | {spe} | "
                + " | ".join(_n(sps[fw]) for fw in cols)
                + f" | {ratio} | "
                + " / ".join(_t(first[fw]) for fw in cols)
                + " |"
            )


def _n(v: float | None) -> str:
    return f"{v:,.0f}" if v else "-"


def _t(v: float | None) -> str:
    return f"{v:.2f}s" if v else "-"


if __name__ == "__main__":
    main()
