"""The long runs of the reliability suite: spec fuzzing at scale, SIGKILLs during training.

    python bench/reliability.py fuzz [--cases 10000] [--seed 0] [--workers 2]
        [--timeout 5] [--json /tmp/modelspec-fuzz.json]
    python bench/reliability.py crash [--kills 20] [--targeted 1] [--seed 0]
        [--json /tmp/modelspec-crash.json]

`fuzz` checks `--cases` mutants of every shipped spec (`specs/**/*.yaml`,
`examples/**/*.yaml`; the generator is `tests/reliability/mutations.py`, the one the CI
test draws its few hundred cases from) the way `modelspec check` does, in-process, each
in a worker process that is killed past the timeout. It prints the outcome counts (per
operator too) and writes every case's outcome to the JSON file; a case is reproduced from
`--seed` and its number alone (`mutations.mutant(seed, case, ...)`). Exit code 1 when
any case is a traceback, hang, crash, unpositioned error or executed code.

`crash` first trains a small spec (`tests/reliability/crash.py`) without interruption,
measuring the training loop's duration; then, for each of `--kills` trials, trains the
same spec into a fresh run directory, sends SIGKILL at a moment drawn uniformly over that
duration, and reruns the same command to the end. The moment is aimed at the same point
of progress: the last event of the reference run before it (a step's dispatch, a save,
an epoch's logs) plus the time since, so a machine that is faster or slower than during
the reference run still gets killed there. Every final run must exit 0, and its
predictions and metrics.jsonl must be bit-identical to the uninterrupted run's. The
table says where each kill landed (steps, an async save in flight, epoch-end writes).
`--targeted N` adds N trials per moment that the kill-from-outside rarely hits, killed
from inside: right after a step's dispatch, with an async save in flight, halfway
through a metrics line, halfway through rewriting metrics.jsonl on resume, halfway
through a TensorBoard batch. Exit code 1 on any difference.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from tests.reliability.fuzz_runner import FAILURES, OUTCOMES, run_cases  # noqa: E402
from tests.reliability.mutations import generate, shipped_specs  # noqa: E402


def machine() -> str:
    return f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"  # noqa: E501


def table(header: list[str], rows: list[list]) -> str:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])]
    )


# -- fuzz ------------------------------------------------------------------------------------


def fuzz(args: argparse.Namespace) -> int:
    specs = shipped_specs(ROOT)
    started = time.time()
    counts: collections.Counter = collections.Counter()
    by_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    results, slowest = [], []
    with tempfile.TemporaryDirectory(prefix="modelspec-fuzz-") as scratch:
        cases = generate(args.seed, args.cases, ROOT)
        for i, r in enumerate(
            run_cases(cases, Path(scratch), workers=args.workers, timeout=args.timeout), 1
        ):
            counts[r.outcome] += 1
            for op in set(r.operators):
                by_op[op][r.outcome] += 1
            results.append(r)
            if r.outcome in FAILURES:
                print(f"case {r.case} ({r.source}, {'+'.join(r.operators)}): {r.outcome}")
                print("    " + r.detail.strip().replace("\n", "\n    ")[-1500:])
            if i % 1000 == 0:
                print(f"  {i:,} cases, {time.time() - started:.0f} s", file=sys.stderr)
    wall = time.time() - started
    results.sort(key=lambda r: r.case)
    slowest = sorted(results, key=lambda r: r.cpu, reverse=True)[:5]
    print(
        f"\nmodelspec fuzz: {args.cases:,} cases from {len(specs)} shipped specs, seed "
        f"{args.seed}, {args.workers} workers, timeout {args.timeout:g} s; {wall:.0f} s\n"
    )
    print(table(["outcome", "cases"], [[o, f"{counts[o]:,}"] for o in OUTCOMES]))
    print()
    rows = [[op, sum(c.values()), *(c[o] for o in OUTCOMES)] for op, c in sorted(by_op.items())]
    print(table(["operator", "cases", *OUTCOMES], rows))
    print("\nslowest cases (CPU s): " + ", ".join(f"{r.case} {r.cpu:.2f}" for r in slowest))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "machine": machine(),
                    "seed": args.seed,
                    "cases": args.cases,
                    "seconds": round(wall, 1),
                    "counts": {o: counts[o] for o in OUTCOMES},
                    "by_operator": {op: dict(c) for op, c in sorted(by_op.items())},
                    "results": [
                        {
                            "case": r.case,
                            "source": r.source,
                            "operators": list(r.operators),
                            "outcome": r.outcome,
                            "cpu": round(r.cpu, 4),
                            "detail": r.detail[:500],
                        }
                        for r in results
                    ],  # fmt: skip
                },
                indent=1,
            )
        )
        print(f"wrote {args.json}")
    return 1 if any(counts[o] for o in FAILURES) else 0


# -- crash -----------------------------------------------------------------------------------


def crash(args: argparse.Namespace) -> int:
    from tests.reliability import crash as harness

    rng = random.Random(f"modelspec-crash:{args.seed}")
    work = Path(tempfile.mkdtemp(prefix="modelspec-crash-"))
    project = harness.make_project(work / "project")
    started = time.time()
    full = harness.train(project, work / "full")
    if full.returncode != 0:
        print(full.output)
        return 1
    begin = next(t for t, m, _ in full.events if m == "begin")
    end = next(t for t, m, _ in full.events if m == "end")
    duration = end - begin
    counts = collections.Counter(m for _, m, _ in full.events)
    reference = (
        harness.predictions(project, work / "full", work / "full.npz"),
        (work / "full" / "metrics.jsonl").read_bytes(),
    )
    print(
        f"uninterrupted run: training loop {duration:.1f} s, {counts['step']} dispatches, "
        f"{counts['save']} saves, {counts['metrics']} metrics lines"
    )
    trials = [("timed", rng.uniform(0, duration)) for _ in range(args.kills)]
    for moment in harness.MOMENTS:
        total = counts[moment] or 1  # a rewrite happens once per resume
        trials += [("targeted", f"{moment}:{rng.randint(1, total)}") for _ in range(args.targeted)]
    rows, failures = [], 0
    for i, (kind, when) in enumerate(trials, 1):
        run = work / f"trial{i}"
        if kind == "timed":
            cut = harness.train(project, run, kill_after=harness.same_point(full.events, when))
            where = harness.phase(run, cut)
            label = f"{when:.2f} s"
        else:
            if when.startswith("rewrite"):  # a rewrite needs a resume: kill once before it
                harness.train(project, run, crash_at=f"metrics:{rng.randint(2, counts['metrics'])}")
            cut = harness.train(project, run, crash_at=when)
            where, label = f"inside {when.split(':')[0]}", when
        killed = cut.returncode == -9
        rerun = harness.train(project, run)
        resumed = next((line for line in rerun.output.splitlines() if "Resuming" in line), "")
        ok = rerun.returncode == 0
        same_pred = same_metrics = False
        if ok:
            same_pred = (
                harness.predictions(project, run, run.parent / f"{run.name}.npz") == (reference[0])
            )
            same_metrics = (run / "metrics.jsonl").read_bytes() == reference[1]
        good = ok and same_pred and same_metrics
        failures += not good
        step = resumed.split("step ")[1].split()[0] if resumed else "0 (fresh)"
        rows.append(
            [i, kind, label, where, "yes" if killed else "finished first", step,
             "yes" if ok else f"exit {rerun.returncode}", "yes" if same_pred else "NO",
             "yes" if same_metrics else "NO"]
        )  # fmt: skip
        print(" | ".join(map(str, rows[-1])), flush=True)
        if not ok:
            print(rerun.output[-3000:])
        shutil.rmtree(run, ignore_errors=True)
    wall = time.time() - started
    print(
        f"\nmodelspec crash: {len(trials)} SIGKILLs ({args.kills} timed uniformly over the "
        f"{duration:.1f} s training loop, {len(trials) - args.kills} inside chosen moments), "
        f"seed {args.seed}; {wall:.0f} s\n"
    )
    header = ["#", "kind", "kill at", "landed", "killed", "resumed from step", "rerun ok",
              "predictions identical", "metrics.jsonl identical"]  # fmt: skip
    print(table(header, rows))
    print(f"\n{len(trials) - failures}/{len(trials)} trials bit-identical; {failures} failures")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "machine": machine(),
                    "seed": args.seed,
                    "loop_seconds": duration,
                    "header": header,
                    "rows": rows,
                    "failures": failures,
                },
                indent=1,
            )  # fmt: skip
        )
        print(f"wrote {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fuzz", help="malformed specs through `modelspec check`")
    f.add_argument("--cases", type=int, default=10_000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--workers", type=int, default=2)
    f.add_argument("--timeout", type=float, default=5.0)
    f.add_argument("--json", default=str(Path(tempfile.gettempdir()) / "modelspec-fuzz.json"))
    c = sub.add_parser("crash", help="SIGKILLs during `modelspec train`, then reruns")
    c.add_argument("--kills", type=int, default=20)
    c.add_argument("--targeted", type=int, default=1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", default=str(Path(tempfile.gettempdir()) / "modelspec-crash.json"))
    args = parser.parse_args()
    return fuzz(args) if args.command == "fuzz" else crash(args)


if __name__ == "__main__":
    sys.exit(main())
