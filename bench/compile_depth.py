"""Compile time of a language model's train step against its depth, scanned and
unrolled: what `scan: true` on a repeated block use buys.

For each `repeat` (default 2, 8, 24) and `scan: true|false` the spec's block use
(`model.layers[1]` by default, `--use`) is edited in the loaded YAML and the dict is
`load()`ed; a fresh process opens the session (no data: synthetic batch of the spec's
shapes), then times `train_step.lower(state, batch)` (tracing to StableHLO) and
`.compile()` (XLA) of the real train step, the one `modelspec train` runs. A fresh
process per measurement means no jit or compilation cache is shared between
configurations (jax's persistent cache is off by default and modelspec does not turn it
on). The configurations are run `--reps` times interleaved and the table shows medians
and the spread.

    python bench/compile_depth.py [--spec specs/gpt_tiny.yaml] [--repeats 2,8,24]
        [--reps 3] [--use 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def spec_dict(path: str, use: int, repeat: int, scan: bool) -> dict:
    """The spec as loaded from YAML with `model.layers[use]` repeated `repeat` times,
    scanned or not."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    layer = data["model"]["layers"][use]
    if "repeat" not in layer:
        raise SystemExit(f"model.layers[{use}] of {path} is not a repeated block use")
    layer["repeat"], layer["scan"] = repeat, scan
    return data


def worker(path: str, use: int, repeat: int, scan: bool) -> dict:
    """One measurement (run in its own process)."""
    import jax
    from lm_mfu import synthetic_batches

    from modelspec.compiler.load import load
    from modelspec.compiler.sharding.mesh import put_batch
    from modelspec.runtime.session import open_session

    spec = load(spec_dict(path, use, repeat, scan))
    if spec.train.steps_per_execution != 1:
        raise SystemExit("measure with train.steps_per_execution 1 (--set is not applied here)")
    session = open_session(spec, data=False)
    (batch,) = synthetic_batches(session.spec, session.spec.data.batch_size, 1)
    batch = put_batch(session.dist, batch)
    jax.block_until_ready((session.state, batch))
    c0, t0 = time.process_time(), time.perf_counter()
    lowered = session.train_step.lower(session.state, batch)
    t1 = time.perf_counter()
    lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
    return {
        "lower": t1 - t0,
        "compile": t2 - t1,
        "cpu": c2 - c0,
        "scanned": bool(session.spec.execution.stacks),
        "hlo_lines": len(lowered.as_text().splitlines()),
    }


def measure(path: str, use: int, repeat: int, scan: bool) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        f"--spec={path}",
        f"--use={use}",
        f"--repeats={repeat}",
        f"--scan={'true' if scan else 'false'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs/gpt_tiny.yaml"))
    p.add_argument("--repeats", default="2,8,24", help="comma-separated repeat counts")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--use", type=int, default=1, help="index of the block use in model.layers")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--scan", choices=("true", "false"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    repeats = [int(r) for r in args.repeats.split(",")]
    if args.worker:
        print(json.dumps(worker(args.spec, args.use, repeats[0], args.scan == "true")))
        return

    configs = [(n, scan) for scan in (True, False) for n in repeats]
    runs: dict[tuple, list[dict]] = {c: [] for c in configs}
    t0 = time.perf_counter()
    for _ in range(args.reps):
        for config in configs:  # interleaved: every configuration once per repetition
            result = measure(args.spec, args.use, *config)
            if result["scanned"] != config[1]:
                raise SystemExit(f"repeat {config[0]}, scan {config[1]}: not compiled that way")
            runs[config].append(result)
    print(f"spec: {args.spec}, block use model.layers[{args.use}]")
    print(
        f"{args.reps} interleaved repetitions, one fresh process per measurement "
        f"({time.perf_counter() - t0:.0f} s in all); seconds, median (min..max); lower and "
        f"compile are wall time, CPU is the process's CPU time for both (all threads)\n"
    )
    header = (
        f"{'repeat':>6} {'scan':>6} {'lower':>17} {'compile':>17} {'total':>17} "
        f"{'CPU':>17} {'HLO lines':>10}"
    )
    print(header)
    print("-" * len(header))
    totals = {}
    for (n, scan), rs in runs.items():
        cells = []
        for key in ("lower", "compile", "total", "cpu"):
            xs = [r["lower"] + r["compile"] if key == "total" else r[key] for r in rs]
            cells.append(f"{statistics.median(xs):6.2f} ({min(xs):.2f}..{max(xs):.2f})")
            if key in ("total", "cpu"):
                totals[key, n, scan] = xs
        print(f"{n:>6} {str(scan).lower():>6} " + " ".join(f"{c:>17}" for c in cells), end="")
        print(f" {rs[0]['hlo_lines']:>10}")
    print()
    base = repeats[0]
    for scan in (True, False):
        for n in repeats[1:]:
            ratio = {
                key: [
                    f(totals[key, n, scan]) / f(totals[key, base, scan])
                    for f in (statistics.median, min)
                ]
                for key in ("total", "cpu")
            }
            print(
                f"{'scanned' if scan else 'unrolled'}: repeat {n} / repeat {base}: wall "
                f"{ratio['total'][0]:.2f}x by medians, {ratio['total'][1]:.2f}x by minima; CPU "
                f"{ratio['cpu'][0]:.2f}x by medians, {ratio['cpu'][1]:.2f}x by minima"
            )


if __name__ == "__main__":
    main()
