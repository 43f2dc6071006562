"""Which checkpoint `predict` and `evaluate` use, and how they read it.

They take the newest step on disk (not orbax's newest *readable* step: a damaged latest
checkpoint must be reported, not silently replaced by an older one), restore only the
model's variables (params, batch statistics, frozen weights: an optimizer change does
not matter to inference), check them against their digest, and name the step on
stderr. A damaged checkpoint is refused with a SpecError naming the run directory, the
step, what is wrong and the fix; only `train` falls back to an older checkpoint.

They take no lock and may run while `train` writes the same run directory: a step
appears only once it is complete (orbax renames it into place), and when training
deletes the step being read (`max_to_keep`), the newest step is tried again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelspec.runtime.checkpoint import (
    MODEL_FIELDS,
    CheckpointDamaged,
    Checkpointer,
    restore_checked,
    run_dir_error,
)
from modelspec.runtime.host_stage import HostStateDamaged
from modelspec.runtime.session import Session

ATTEMPTS = 3


def damaged_error(run_dir: Path, exc: CheckpointDamaged, older: int | None):
    """The refusal for a damaged checkpoint, with the way out."""
    path = run_dir / "checkpoints" / str(exc.step)
    fallback = (
        f"Move {path} away to use step {older}, the previous checkpoint, or rerun "
        f"`modelspec train` with this run directory: it sets the damaged step aside and "
        f"resumes from step {older}."
        if older is not None
        else f"It is the only checkpoint: move {path} away and train again (--restart)."
    )
    return run_dir_error(
        run_dir,
        "checkpoint",
        f"checkpoint step {exc.step} in {run_dir} is damaged: {exc.reason}",
        hint=fallback,
    )


def restore_latest(
    session: Session, run_dir: Path, step: int | None = None, *, best: bool = False
) -> tuple[Any, int]:
    """The session's state with the newest checkpoint's model variables, and its step.
    `step` (`export --step`): that checkpoint instead, refused (listing the steps on
    disk) when absent; a damaged one is refused like the newest, never replaced.
    `best` (`--best`): the checkpoint ModelCheckpoint(save_best_only) kept in `best/`."""
    wanted = step
    folder = run_dir / ("best" if best else "checkpoints")
    ckpt = Checkpointer(folder, max_to_keep=None, async_save=False)
    try:
        for attempt in range(ATTEMPTS):
            steps = ckpt.steps()
            if not steps and best:
                raise run_dir_error(
                    run_dir,
                    "--best",
                    "no best checkpoint in this run directory",
                    hint="A run writes one with a ModelCheckpoint callback with "
                    "`save_best_only: true` (in train.callbacks); without --best the newest "
                    "checkpoint is used.",
                )
            if not steps:
                raise run_dir_error(
                    run_dir,
                    "--run-dir",
                    "no checkpoint found in this run directory",
                    hint="Train first: modelspec train SPEC --run-dir DIR.",
                )
            if wanted is not None and wanted not in steps:
                raise run_dir_error(
                    run_dir,
                    "--step",
                    f"no checkpoint step {wanted} in this run directory",
                    hint=f"Checkpoint steps there: {_listed(steps)}.",
                )
            step = steps[-1] if wanted is None else wanted
            try:
                state, _ = restore_checked(ckpt, step, session.state, run_dir, fields=MODEL_FIELDS)
                if session.host:  # the text layers' vocabularies of the same checkpoint
                    try:
                        session.host.load_meta(ckpt.read_meta(step))
                    except HostStateDamaged as exc:
                        raise CheckpointDamaged(step, exc.reason) from None
            except CheckpointDamaged as exc:
                if ckpt.steps() != steps and attempt + 1 < ATTEMPTS:
                    ckpt.reload()  # training saved or deleted a step meanwhile
                    continue
                if wanted is not None:  # chosen by --step: name the others, not a fallback
                    others = [s for s in steps if s != step]
                    hint = (
                        f"Choose another --step: {_listed(others)}."
                        if others
                        else "It is the only checkpoint: train again (--restart)."
                    )
                    raise run_dir_error(
                        run_dir,
                        "checkpoint",
                        f"checkpoint step {step} in {run_dir} is damaged: {exc.reason}",
                        hint=hint,
                    ) from None
                raise damaged_error(run_dir, exc, steps[-2] if len(steps) > 1 else None) from None
            kind = "best checkpoint" if best else "checkpoint"
            print(f"Using {kind} step {step} of {run_dir}", file=sys.stderr)
            if ckpt.unverified == step:
                print(
                    f"Note: checkpoint step {step} has no digest (written by an older "
                    "modelspec), so its arrays could not be verified.",
                    file=sys.stderr,
                )
            return state, step
        raise AssertionError("unreachable")
    finally:
        ckpt.close()


def _listed(steps: list[int], most: int = 20) -> str:
    """The steps for a message: all of them, or the newest `most` of a long run."""
    shown = ", ".join(map(str, steps[-most:]))
    return shown if len(steps) <= most else f"{len(steps)} steps, the newest {shown}"
