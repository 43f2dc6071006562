"""Language-model training throughput: tokens/s, model FLOPs, MFU, and the ratio to a
hand-written `jax.jit` train step of the same shapes and math.

The modelspec side is the spec's real train step: `open_session` builds it exactly as
`modelspec train` does (the same `jax.jit`, state donation and shardings; the spec's
`steps_per_execution`), and it is fed synthetic int token batches of the spec's shapes
the way the trainer would feed this data (`--feed auto`): a training set that fits the
devices stays on them and each step gathers its own batch (`runtime/device_data.py`,
what gpt_tiny's bundled corpus gets); otherwise batches are put on the devices ahead of
the step, as the trainer's prefetcher does. Either way the time measured is the step's. The hand-written side is `bench/lm_reference.py`: plain
dicts of arrays, pre-LN GPT blocks written out, optax AdamW, `jax.lax.scan` over stacked
blocks when the spec scans. Both start from the same weights (copied from the session)
and are first checked to compute the same losses on the same batches; the run stops if
they do not.

Timing: after a warm-up (compile), `--reps` repetitions of `--steps` steps each, the
sides interleaved (A B A B ...: a machine busy for a while slows both alike), the state
blocked on after each repetition. The table shows medians per side and the median of
the per-repetition (paired) ratios. A third side, the modelspec step of the same spec
without its `metrics:` (the loss mean is still kept, as in Keras), shows what the metric
accumulation costs.

FLOPs per token are counted as MaxText's `calculate_tflops_training_per_device`:
6·N for the learnable matmul weights (N: every `kernel`, i.e. attention q/k/v/output,
MLP and the logits head; the embedding lookups, biases and LayerNorm scales are not
counted) plus the attention products, 3 × 2·T·heads·(key_dim + value_dim) per
layer, halved for a causal mask. MFU = achieved FLOP/s per device ÷ the device's dense
bf16 peak (`PEAKS`); "unknown" where the device is not listed (CPU).

    python bench/lm_mfu.py [--spec specs/gpt_tiny.yaml] [--steps 20] [--reps 7]
        [--batch B] [--set key=value ...] [--feed auto|resident|host] [--no-metrics-variant]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PEAKS = (  # (device_kind substring, dense bf16 TFLOP/s per chip), most specific first
    ("H200", 989.4),  # SXM
    ("H100", 989.4),  # SXM (PCIe: 756)
    ("A100", 312.0),
    ("TPU v5 lite", 197.0),  # v5e
    ("TPU v5e", 197.0),
    ("TPU v6 lite", 918.0),  # v6e (Trillium)
    ("TPU v5", 459.0),  # v5p
    ("TPU v4", 275.0),
)


def peak_tflops(device) -> float | None:
    kind = getattr(device, "device_kind", "")
    for name, peak in PEAKS:
        if name.lower() in kind.lower():
            return peak
    return None


# -- model FLOPs (MaxText's count) -------------------------------------------------
def flops_per_token(spec, params) -> dict:
    """Training FLOPs per token, split as MaxText splits them, and the N used."""
    import jax

    kernels = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if getattr(path[-1], "key", None) == "kernel":
            kernels += int(leaf.size)
    attention = 0
    for node in spec.graph.nodes:
        if type(node.layer).__name__ not in ("MultiHeadAttention", "GroupQueryAttention"):
            continue
        layer = node.layer
        query, value = (spec.output_type(r) for r in node.refs[:2])
        if query.rank != 3:
            raise SystemExit(f"{node.name}: only (batch, steps, features) attention is counted")
        keys = value.shape[1]
        heads = getattr(layer, "num_heads", None) or layer.num_query_heads
        key_dim = getattr(layer, "key_dim", None) or layer.head_dim
        value_dim = getattr(layer, "value_dim", None) or key_dim
        forward = 2 * keys * heads * (key_dim + value_dim)  # scores + context, per query
        attention += 3 * forward // (2 if layer.use_causal_mask else 1)
    return {"N": kernels, "weights": 6 * kernels, "attention": attention}


# -- synthetic batches ---------------------------------------------------------------
def synthetic_batches(spec, batch: int, count: int, seed: int = 0) -> list[dict]:
    """`count` host batches of the spec's input and target shapes: ids below the
    Embedding's input_dim, labels below the output's last size."""
    from modelspec.compiler.infer import input_types
    from modelspec.runtime.data.id_bounds import id_bounds

    rng = np.random.default_rng(seed)
    bounds = id_bounds(spec.graph)
    out = []
    for _ in range(count):
        inputs = {}
        for name, t in input_types(spec).items():
            shape = (batch, *t.shape[1:])
            if np.dtype(t.dtype).kind not in "iu":
                inputs[name] = rng.normal(size=shape).astype(t.dtype)
                continue
            inputs[name] = rng.integers(0, bounds[name].limit, shape).astype(t.dtype)
        targets = {}
        for name in spec.graph.outputs:
            t = spec.output_type(name)
            targets[name] = rng.integers(0, t.shape[-1], (batch, *t.shape[1:-1])).astype("int32")
        out.append({"inputs": inputs, "targets": targets, "mask": np.ones(batch, "float32")})
    return out


# -- the sides -----------------------------------------------------------------------
class ModelspecSide:
    """The session's own jitted train step. `feed`: "resident" is the step that
    `modelspec train` runs for in-memory data that fits the devices (the training set
    on the devices, each step gathering its batch: `runtime/device_data.py`), "host"
    the step fed batches put on the devices beforehand (what the prefetcher does for
    data that does not fit); "auto" picks as the trainer does."""

    def __init__(self, source: str, overrides: list[str], batches: int, feed: str = "auto"):
        import jax

        from modelspec.compiler.sharding.mesh import put_batch
        from modelspec.runtime import feeding
        from modelspec.runtime.data.dataset import ArrayDataset
        from modelspec.runtime.session import open_session
        from modelspec.runtime.steps import stack

        self.session = s = open_session(source, overrides, data=False)
        self.spe = s.spec.train.steps_per_execution
        self.batch_size = s.spec.data.batch_size
        self.host = synthetic_batches(s.spec, self.batch_size, batches * self.spe)
        self.resident = None
        if feed != "host":
            joined = {
                part: {
                    k: np.concatenate([b[part][k] for b in self.host]) for k in self.host[0][part]
                }
                for part in ("inputs", "targets")
            }
            dataset = ArrayDataset(joined["inputs"], joined["targets"])
            self.resident = feeding.place(s, dataset)
            if self.resident is None and feed == "resident":
                raise SystemExit("the synthetic training set cannot stay on the devices here")
            self.per_epoch = len(self.host)
            if self.resident is not None:  # epoch 0's batches, in the order the step takes them
                batching = feeding.batching(s.spec)
                self.host = [dataset.batch(0, i, **batching) for i in range(self.per_epoch)]
        self.feed = "resident" if self.resident is not None else "host"
        chunks = [self.host[i : i + self.spe] for i in range(0, len(self.host), self.spe)]
        if self.spe == 1:
            self.device = [put_batch(s.dist, b[0]) for b in chunks]
        else:
            self.device = [put_batch(s.dist, stack(b), stacked=True) for b in chunks]
        self.initial = s.state
        self.state, self.done = self.fresh(), 0
        jax.block_until_ready(self.state)

    def fresh(self):
        import jax

        return jax.tree.map(lambda a: a.copy(), self.initial)

    def run(self, state, steps: int, start: int = 0):
        """`steps` steps from `state`, which has taken `start` steps."""
        if self.resident is None:
            for i in range(start // self.spe, (start + steps) // self.spe):
                state = self.session.train_step(state, self.device[i % len(self.device)])
            return state
        at = start
        while at < start + steps:  # the trainer's loop: chunks within an epoch
            epoch, index = divmod(at, self.per_epoch)
            count = min(self.spe, self.per_epoch - index)
            state = self.resident.train(state, epoch, index, count, at)
            at += count
        return state

    def loss(self, state) -> float:
        return float(self.session.objective.results(state.metrics)["loss"])


class ReferenceSide:
    """The hand-written step (`lm_reference.py`) from the same weights and batches."""

    def __init__(self, ms: ModelspecSide):
        import jax
        import lm_reference as ref
        from jax.sharding import PartitionSpec

        s = ms.session
        self.layout = ref.gpt_layout(s.spec)
        tx = ref.optimizer(s.spec)
        shardings = None
        if s.dist is not None:
            shardings = (s.dist.sharding(PartitionSpec()), s.dist.sharding(s.dist.batch_spec))
        self.step = ref.make_step(self.layout, tx, shardings)
        self.initial = ref.init_state(ref.reference_params(self.layout, ms.initial.params), tx)
        if shardings is not None:
            self.initial = jax.device_put(self.initial, shardings[0])
        self.batches = []
        for b in ms.host:
            (tokens,), (labels,) = b["inputs"].values(), b["targets"].values()
            put = (lambda x: jax.device_put(x, shardings[1])) if shardings else jax.device_put
            self.batches.append((put(tokens), put(labels)))
        self.state, self.done = self.fresh(), 0
        jax.block_until_ready(self.state)

    def fresh(self):
        import jax

        return jax.tree.map(lambda a: a.copy(), self.initial)

    def run(self, state, steps: int, start: int = 0):
        for i in range(start, start + steps):
            state = self.step(state, *self.batches[i % len(self.batches)])
        return state

    @staticmethod
    def loss(state) -> float:
        return float(state.loss_sum / state.step)


def check_same_math(ms: ModelspecSide, reference: ReferenceSide, steps: int) -> tuple:
    """Mean loss over the first `steps` steps of each side from the same weights and
    batches (the modelspec loss metric is that mean); exits when they differ."""
    a = ms.loss(ms.run(ms.fresh(), steps))
    b = reference.loss(reference.run(reference.fresh(), steps))
    rel = abs(a - b) / abs(b)
    if not rel < 1e-4:
        raise SystemExit(
            f"the hand-written step does not compute what the spec does: mean loss over "
            f"{steps} steps {a:.6f} (modelspec) vs {b:.6f} (hand-written)"
        )
    return a, b, rel


def stacks_text(spec) -> str:
    """The repeated block uses and how they compile, e.g. "blocks x 8 (scan, remat none)"."""
    scanned = {s.name: s.remat for s in spec.execution.stacks}
    remat = {s.nodes[0].split("/")[0]: s.remat for s in spec.execution.segments}
    parts = []
    for use in spec.model.stacks:
        how = "scan" if use.name in scanned else "unrolled"
        policy = scanned.get(use.name, remat.get(use.name, "none"))
        parts.append(f"{use.name} x {use.repeat} ({how}, remat {policy})")
    return ", ".join(parts) or "no repeated blocks"


def timed(side, steps: int) -> float:
    """Seconds for `steps` more steps of the side's running state, up to its last
    result being ready."""
    import jax

    c0, t0 = time.process_time(), time.perf_counter()
    side.state = side.run(side.state, steps, side.done)
    jax.block_until_ready(side.state)
    side.done += steps
    side.cpu.append(time.process_time() - c0)  # every thread of the process, both sides'
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs/gpt_tiny.yaml"))
    p.add_argument("--steps", type=int, default=20, help="steps per timed repetition")
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    p.add_argument("--batch", type=int, help="override data.batch_size")
    p.add_argument(
        "--feed",
        choices=("auto", "resident", "host"),
        default="auto",
        help="how the modelspec step gets its batches (auto: as `modelspec train` does)",
    )
    p.add_argument("--batches", type=int, default=16, help="distinct synthetic batches")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--no-metrics-variant",
        action="store_true",
        help="skip the modelspec side without the spec's metrics",
    )
    args = p.parse_args(argv)

    import jax

    overrides = list(args.sets) + ([f"data.batch_size={args.batch}"] if args.batch else [])
    t0 = time.perf_counter()
    ms = ModelspecSide(args.spec, overrides, args.batches, args.feed)
    spec = ms.session.spec
    sides = {"modelspec train step": ms}
    import lm_reference

    try:
        reference = ReferenceSide(ms)
        sides["hand-written jax.jit"] = reference
    except lm_reference.NotReference as exc:  # modelspec's numbers alone
        reference, why_not = None, str(exc)
    if not args.no_metrics_variant and spec.metrics:
        sides["modelspec, no metrics"] = ModelspecSide(
            args.spec, [*overrides, "metrics=[]"], args.batches, args.feed
        )
    steps = args.steps - args.steps % ms.spe or ms.spe
    for side in sides.values():  # compile + warm up
        side.cpu = []
        timed(side, max(args.warmup, 1) * ms.spe)
        side.cpu = []
    setup = time.perf_counter() - t0
    same = check_same_math(ms, reference, 3 * ms.spe) if reference else None

    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.reps):
        for name, side in sides.items():  # A B (C) A B (C) ...
            times[name].append(timed(side, steps))

    tokens = (
        steps * ms.batch_size * int(np.prod(next(iter(ms.host[0]["inputs"].values())).shape[1:]))
    )
    devices = list(ms.session.dist.mesh.devices.flat) if ms.session.dist else jax.devices()[:1]
    peak = peak_tflops(devices[0])
    flops = flops_per_token(spec, ms.initial.params)
    per_token = flops["weights"] + flops["attention"]
    seq = tokens // (steps * ms.batch_size)

    print(f"spec: {args.spec} ({spec.name}), overrides: {overrides or 'none'}")
    print(
        f"shapes: batch {ms.batch_size} x {seq} tokens, {stacks_text(spec)}, "
        f"steps_per_execution={ms.spe}, modelspec feed: {ms.feed}"
    )
    kind = devices[0].device_kind
    peak_text = f"{peak} TFLOP/s dense bf16 per device" if peak else "unknown peak"
    print(f"devices: {len(devices)} x {kind} ({devices[0].platform}); {peak_text}")
    print(
        f"model FLOPs per token (MaxText's count): 6 x N + attention = "
        f"6 x {flops['N']:,} + {flops['attention']:,} = {per_token:,}; N = every matmul "
        f"kernel (attention q/k/v/output, MLP, logits head), not the embeddings, biases or "
        f"LayerNorm scales"
    )
    if same is None:
        print(f"no hand-written reference for this spec: {why_not}")
    else:
        print(
            f"same math: mean loss over the first {3 * ms.spe} steps {same[0]:.6f} "
            f"(modelspec) vs {same[1]:.6f} (hand-written), relative difference {same[2]:.1e}"
        )
    print(
        f"{args.reps} interleaved repetitions of {steps} steps ({tokens:,} tokens) per side; "
        f"setup (sessions, compiles) {setup:.0f} s; step ms: wall, median (min..max) per "
        f"repetition; CPU ms: the process's CPU time per step, all threads (less disturbed "
        f"by other processes than wall time)\n"
    )
    header = (
        f"{'side':<24}{'step ms':>9}{'min..max ms':>15}{'CPU ms':>8}{'tokens/s':>11}"
        f"{'TFLOP/s':>10}{'MFU':>8}"
    )
    print(header)
    print("-" * len(header))
    rate = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rate[name] = tokens / med
        tflops = rate[name] * per_token / 1e12 / len(devices)
        mfu = f"{100 * tflops / peak:.1f}%" if peak else "n/a"
        spread = f"{1e3 * min(ts) / steps:.1f}..{1e3 * max(ts) / steps:.1f}"
        print(
            f"{name:<24}{1e3 * med / steps:>9.2f}{spread:>15}"
            f"{1e3 * statistics.median(sides[name].cpu) / steps:>8.1f}{rate[name]:>11,.0f}"
            f"{tflops:>10.4f}{mfu:>8}"
        )
    if reference is None:
        return
    ratios = [
        b / a
        for a, b in zip(times["modelspec train step"], times["hand-written jax.jit"], strict=True)
    ]
    print(
        f"\nmodelspec tokens/s / hand-written tokens/s: median of {len(ratios)} paired ratios "
        f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    if "modelspec, no metrics" in times:
        plain = [
            b / a
            for a, b in zip(
                times["modelspec, no metrics"], times["hand-written jax.jit"], strict=True
            )
        ]
        print(
            f"without the spec's metrics: median paired ratio {statistics.median(plain):.3f} "
            f"(min {min(plain):.3f}, max {max(plain):.3f})"
        )


if __name__ == "__main__":
    main()
