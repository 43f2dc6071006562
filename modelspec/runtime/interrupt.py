"""Ctrl-C and SIGTERM during `train`: stop cleanly at a dispatch boundary.

Without this, Ctrl-C prints a KeyboardInterrupt traceback from wherever Python was
(often inside orbax or jax), and SIGTERM (a scheduler's preemption) ends the process
with no word at all, possibly while an asynchronous checkpoint save is in flight. Here
the signal only sets a flag; the loop checks it after each dispatch, saves a checkpoint
there (a step boundary: one synchronous save, so a rerun loses no step), waits for it,
and raises `TrainingInterrupted`, which says where training stopped (step, epoch, batch)
and which checkpoint a rerun resumes from. The CLI exits with
128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell does.

The first signal restores the previous handlers, so a second Ctrl-C stops at once.
Only single-process runs install the handlers: in a multi-process run each process
would stop at a different step and leave the others waiting in a collective.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM; `exit_code` is what a shell would report.
    A KeyboardInterrupt, so `except Exception` in user code does not swallow Ctrl-C."""

    def __init__(
        self,
        signum: int,
        step: int,
        last_checkpoint: int | None,
        run_dir: Path,
        *,
        epoch: int | None = None,
        batch: tuple[int, int] | None = None,
    ):
        self.signum, self.step, self.last_checkpoint = signum, step, last_checkpoint
        self.exit_code = 128 + signum
        if last_checkpoint is None:
            where = f"there is no checkpoint in {run_dir} yet, so a rerun starts from step 0"
        elif last_checkpoint == step:
            where = f"saved checkpoint step {step} in {run_dir}; a rerun resumes from there"
        else:
            where = (
                f"the last checkpoint in {run_dir} is step {last_checkpoint}; a rerun "
                "resumes from there"
            )
        at = f"step {step}"
        if epoch is not None:  # 1-based as the progress bar shows it
            at += f" (epoch {epoch + 1}" + (
                f", batch {batch[0]} of {batch[1]})" if batch else ", at its end)"
            )
        name = signal.Signals(signum).name
        super().__init__(
            f"{name}: training stopped at {at}; {where}. Rerun the same command to resume."
        )


class StopSignals:
    """A context manager: while active, SIGINT/SIGTERM set `received` instead of
    raising or killing (only in the main thread, and only when `enabled`)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        self._restore()  # a second signal acts at once

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        if self.enabled:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
