"""The cost of `train.terminate_on_nan: strict` (one device-to-host read of the loss
per step) against the default (checks only at saves and epoch ends) and off, on
train_throughput.py's tiny MLP, where a per-step sync weighs the most.

    python bench/nan_strict.py [--epochs 4] [--reps 3]

Prints the median steady-state epoch time (epochs after the first) per mode and the
extra microseconds per step that strict costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import CASES, make_spec  # noqa: E402

from modelspec.runtime.trainer import train  # noqa: E402

CASE = "tiny MLP 16-32-10 (batch 32)"


def epoch_seconds(spec: dict, mode: bool | str, reps: int, tmp: Path) -> float:
    spec = {**spec, "train": {**spec["train"], "terminate_on_nan": mode}}
    path = tmp / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = []
    for rep in range(reps):
        history = train(path, tmp / f"run-{mode}-{rep}", progress=False)
        runs.append(statistics.median(history.summary["epoch_seconds"][1:]))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    case = CASES[CASE]
    steps = case["n"] // case["batch"]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {CASE}, {steps} steps/epoch")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(case["n"], *case["x"])).astype("float32")
        y = rng.integers(0, case["classes"], case["n"]).astype("int32")
        np.savez(tmp / "d.npz", x=x, y=y)
        spec = make_spec(case, tmp / "d.npz", args.epochs)
        times = {
            mode: epoch_seconds(spec, mode, args.reps, tmp) for mode in (False, True, "strict")
        }
    for mode, t in times.items():
        print(
            f"terminate_on_nan: {str(mode).lower():6}  {t * 1e3:7.1f} ms/epoch  "
            f"{t / steps * 1e6:6.1f} us/step"
        )
    extra = (times["strict"] - times[True]) / steps * 1e6
    print(f"strict costs {extra:+.1f} us/step ({times['strict'] / times[True] - 1:+.0%}) over true")


if __name__ == "__main__":
    main()
