"""Loss and metric curves of runs as one PNG (`modelspec plot`, and `curves.png` that
`train` writes into the run directory).

Reads each run's `metrics.jsonl` (one record per epoch: `epoch`, `step`, `loss`, the
metrics, their `val_` twins, `learning_rate`) and draws one panel per quantity: the
training value solid, the validation value dashed, one colour per run, x = epoch.
matplotlib (the `plot` extra) is imported inside `plot_runs` with the Agg backend, so
neither a display nor the extra is needed to import this module.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

CURVES_FILE = "curves.png"
"""The picture `train` leaves in the run directory."""
_NOT_PLOTTED = ("epoch", "step")


class PlotError(ValueError):
    """A run directory that cannot be plotted (no metrics.jsonl, no complete epoch) or
    a missing matplotlib; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class RunCurves:
    """One run's per-epoch records and the label it gets in the legends."""

    label: str
    records: list[dict]


def read_run(run_dir: Path, label: str | None = None) -> RunCurves:
    """The complete records of `run_dir/metrics.jsonl` (a line cut short by a crash
    ends them, as when a run resumes)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise PlotError(f"{run_dir}: no metrics.jsonl (not a run directory, or no epoch ended)")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if isinstance(record, dict) and isinstance(record.get("epoch"), int | float):
            records.append(record)
    if not records:
        raise PlotError(f"{path}: no complete epoch record to plot")
    return RunCurves(label or Path(run_dir).resolve().name, records)


def panels(runs: list[RunCurves]) -> list[str]:
    """The quantities to draw, one panel each: `loss` first, then the metrics in the
    order the logs list them, `learning_rate` last; a `val_x` goes into x's panel."""
    names: list[str] = []
    for run in runs:
        for record in run.records:
            for key, value in record.items():
                base = key.removeprefix("val_")
                if key in _NOT_PLOTTED or not _number(value) or base in names:
                    continue
                names.append(base)
    first = [n for n in ("loss",) if n in names]
    last = [n for n in ("learning_rate",) if n in names]
    return first + [n for n in names if n not in first + last] + last


def labels_for(run_dirs: list[Path]) -> list[str]:
    """Legend labels: each run directory's name, or its path where names repeat."""
    names = [Path(d).resolve().name for d in run_dirs]
    return [str(d) if names.count(n) > 1 else n for d, n in zip(run_dirs, names, strict=True)]


def plot_runs(run_dirs: list[Path], output: Path, *, dpi: int = 100) -> Path:
    """Draw the curves of `run_dirs` into the PNG `output`; returns its path."""
    runs = [read_run(d, label) for d, label in zip(run_dirs, labels_for(run_dirs), strict=True)]
    try:
        import matplotlib
    except ImportError:
        raise PlotError("drawing curves needs matplotlib: pip install 'modelspec[plot]'") from None
    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    names = panels(runs)
    cols = min(3, len(names))
    grid = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(grid, cols, figsize=(5 * cols, 3.5 * grid), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names, strict=False):
        for i, run in enumerate(runs):
            colour = colours[i % len(colours)]
            for key, style, part in ((name, "-", "train"), (f"val_{name}", "--", "val")):
                points = [(r["epoch"], r[key]) for r in run.records if _number(r.get(key))]
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                label = run.label if name == "learning_rate" else f"{run.label} {part}"
                ax.plot(xs, ys, style, color=colour, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=dpi, format="png")
    plt.close(fig)
    return output


def write_run_curves(run_dir: Path) -> Path | None:
    """`train`'s picture: `run_dir/curves.png`, or None (nothing written) when
    matplotlib is not installed or no epoch has ended."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    try:
        return plot_runs([Path(run_dir)], Path(run_dir) / CURVES_FILE)
    except PlotError:
        return None


def _number(value: object) -> bool:
    """A finite or infinite real number (not a bool, not a string); NaN is drawn as a
    gap by matplotlib, so it counts too."""
    return isinstance(value, int | float) and not isinstance(value, bool)
