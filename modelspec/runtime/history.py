"""What `train` returns: the per-epoch records and a summary of the run.

`summary["first_step_seconds"]` is the time from the `train` call to the first
dispatched steps' results (loading, checks and compilation included; None when no step
ran); `summary["stopped_on_nan"]` is True when TerminateOnNaN stopped training (the CLI then
exits with code 3), and `summary["nan_checkpoint"]` names the step of the last good
checkpoint that was kept (None when there is none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """One dict per epoch (as in metrics.jsonl), a summary, the run dir, the final state."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    state: Any = None


def summarize(
    epochs: list[dict[str, Any]], callbacks: list[Any], wall: float, steps: int
) -> dict[str, Any]:
    """Best epoch by the EarlyStopping monitor (else val_loss, else loss), final logs,
    timing."""
    if not epochs:
        return {"wall_seconds": wall}
    monitor = next(
        (cb.spec.monitor for cb in callbacks if hasattr(cb, "restores")),
        "val_loss" if "val_loss" in epochs[-1] else "loss",
    )
    mode_min = next(
        (cb.mode == "min" for cb in callbacks if hasattr(cb, "restores")),
        monitor.endswith("loss"),
    )
    best = (min if mode_min else max)(
        epochs, key=lambda e: e.get(monitor, math.inf if mode_min else -math.inf)
    )
    return {
        "best_epoch": best["epoch"],
        "monitor": monitor,
        "best": best.get(monitor),
        "final": epochs[-1],
        "wall_seconds": wall,
        "steps_per_second": steps / wall if wall > 0 else None,
    }
