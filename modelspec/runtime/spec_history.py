"""`<run>/spec.yaml` says what ran: the resolved spec of the training now running, and
`<run>/spec_history/<step>.yaml` every resolved spec the run has trained under, named by
the step it took effect at.

Why: a rerun may change the spec in ways a checkpoint allows (more epochs, another
metric, `--set train.epochs=50`). Writing spec.yaml before knowing whether anything
trains made the run directory describe a run that never happened; writing it only once
training starts, and keeping the earlier ones, lets `spec.yaml` (which `predict` and
`evaluate` compare the model with) always be the spec of the newest weights, and the
history say which spec produced which steps.
"""

from __future__ import annotations

from pathlib import Path

HISTORY = "spec_history"


def history_steps(run_dir: Path) -> list[int]:
    """The steps at which the run's specs took effect, in order."""
    folder = run_dir / HISTORY
    if not folder.is_dir():
        return []
    return sorted(int(p.stem) for p in folder.glob("*.yaml") if p.stem.isdigit())


def record_spec(run_dir: Path, text: str, step: int) -> None:
    """Training starts (or resumes, or continues) at `step` under the resolved spec
    `text`: make it spec.yaml, and an entry of the history unless it is the same spec as
    the entry in force. Entries after `step` belong to steps being trained again (a
    resume from an older checkpoint) and are dropped."""
    folder = run_dir / HISTORY
    current = run_dir / "spec.yaml"
    steps = history_steps(run_dir)
    if not steps and step > 0 and current.is_file():  # a run from before the history
        folder.mkdir(exist_ok=True)
        (folder / "0.yaml").write_text(current.read_text())
        steps = [0]
    for later in [s for s in steps if s > step]:
        (folder / f"{later}.yaml").unlink()
    steps = [s for s in steps if s <= step]
    if not steps or (folder / f"{steps[-1]}.yaml").read_text() != text:
        folder.mkdir(exist_ok=True)
        (folder / f"{step}.yaml").write_text(text)
    current.write_text(text)
