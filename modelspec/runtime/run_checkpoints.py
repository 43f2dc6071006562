"""A training run's checkpoints: what one holds besides the state, saving only sound
states, and resuming from the newest intact one.

Why apart from the loop: resume is where exactness and safety live — the data position
(epoch, next batch), callback states, the epochs already logged and the best weights
travel with the TrainState; a damaged step is set aside (never used silently) and the
previous one tried; with TerminateOnNaN only a state whose loss and weights are finite
is ever written, so "the last good checkpoint" is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from modelspec.runtime.callbacks import callback_states, restore_states
from modelspec.runtime.checkpoint import (
    CheckpointDamaged,
    Checkpointer,
    restore_checked,
    run_dir_error,
)
from modelspec.runtime.diskfull import ensure_space
from modelspec.runtime.runlog import MetricsLog, Progress


@dataclass
class Position:
    """Where a run stands: the next batch to train and the epochs already logged."""

    epoch: int = 0
    next_batch: int = 0
    epochs_logged: int = 0
    finished: bool = False


@dataclass
class Resumed:
    """What `RunCheckpoints.resume` hands back to the loop."""

    state: Any
    position: Position
    best: Any = None
    records: list[dict[str, Any]] | None = None
    restored: bool = True
    """False for a fresh run (no intact checkpoint): only then is state adapted."""


class RunCheckpoints:
    """The checkpoints of one run directory, as the training loop uses them."""

    def __init__(
        self,
        run_dir: Path,
        spec: Any,
        callbacks: list[Any],
        *,
        state: Any,
        objective: Any,
        log: MetricsLog,
        progress: Progress,
        main: bool,
        terminate_on_nan: bool,
    ) -> None:
        self.run_dir, self.spec, self.callbacks = run_dir, spec, callbacks
        self.log, self.progress, self.main = log, progress, main
        self.terminate_on_nan = terminate_on_nan
        ck = spec.checkpoint
        self.ckpt = Checkpointer(
            run_dir / "checkpoints", max_to_keep=ck.max_to_keep, async_save=ck.async_save
        )
        self.state_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state))
        self.nan_stopped = False
        self.nan_checkpoint: int | None = None
        loss_of = objective.loss_mean.result

        def all_finite(metrics, params, batch_stats):  # one reduction, one host read
            ok = jnp.all(jnp.isfinite(loss_of(metrics["loss"])))
            for x in jax.tree_util.tree_leaves((params, batch_stats)):
                if jnp.issubdtype(x.dtype, jnp.inexact):
                    ok = ok & jnp.all(jnp.isfinite(x))
            return ok

        self._all_finite = jax.jit(all_finite)

    def meta(self, position: Position) -> dict[str, Any]:
        return {
            "epoch": position.epoch,
            "next_batch": position.next_batch,
            "epochs_logged": position.epochs_logged,
            "callbacks": callback_states(self.callbacks),
            "callback_types": [cb.spec.type for cb in self.callbacks],
            "finished": position.finished,
            "spec_name": self.spec.name,
        }

    def save(self, state: Any, position: Position, best: Any = None) -> bool:
        """Save a checkpoint; with TerminateOnNaN only if its loss and weights are finite
        (False: training must stop, and the previous checkpoint stays the last one)."""
        if self.terminate_on_nan and not bool(
            self._all_finite(state.metrics, state.params, state.batch_stats)
        ):
            self.stop_on_nan(int(state.step))
            return False
        extra = {"best": best} if best is not None else None
        ensure_space(self.run_dir, self.state_bytes * (2 if extra else 1))
        self.ckpt.save(int(state.step), state, self.meta(position), extra)
        return True

    def stop_on_nan(self, step: int) -> None:
        """Stop on a non-finite loss or weights, and say which checkpoint remains."""
        self.nan_stopped = True
        self.ckpt.wait()
        self.nan_checkpoint = kept = self.ckpt.latest_step()
        where = (
            f"the last good checkpoint, step {kept}, is kept in {self.run_dir}"
            if kept is not None
            else "no checkpoint was kept (none was saved before it)"
        )
        self.progress.message(
            f"TerminateOnNaN: non-finite loss or weights by step {step}; stopping: {where}."
        )

    def resume(self, state: Any) -> Resumed:
        """Restore the newest intact checkpoint; damaged ones are set aside, with a
        message, and the previous one is tried."""
        damaged = 0
        for step in reversed(self.ckpt.steps()):
            try:
                return self._resume_from(step, state)
            except CheckpointDamaged as exc:
                damaged += 1
                moved = self._set_aside(step)
                self.progress.message(
                    f"Checkpoint step {step} in {self.run_dir} is damaged ({exc.reason}); "
                    f"moved it to {moved}; trying the previous checkpoint."
                )
        if damaged:
            self.progress.message(
                f"No intact checkpoint is left in {self.run_dir}: training starts over from step 0."
            )
        if self.main:
            self.log.truncate(0)  # no checkpoint: lines of an earlier attempt are dropped
        return Resumed(state, Position(), records=[], restored=False)

    def _set_aside(self, step: int) -> str:
        name = str(self.run_dir / "checkpoints" / f"{step}.damaged")
        if self.main:
            name = str(self.run_dir / "checkpoints" / self.ckpt.set_aside(step).name)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"modelspec set aside {step}")
            self.ckpt.reload()
        return name

    def _resume_from(self, step: int, state: Any) -> Resumed:
        meta = self.ckpt.read_meta(step)
        types = [cb.spec.type for cb in self.callbacks]
        if meta.get("callback_types", types) != types:
            self.ckpt.close()
            raise run_dir_error(
                self.run_dir,
                "train.callbacks",
                f"the checkpoint was written with callbacks {meta.get('callback_types')}, the "
                f"spec now has {types}",
            )
        best_like = (state.params, state.batch_stats, state.frozen)
        has_best = self.ckpt.has_extra(step)
        state, extra = restore_checked(
            self.ckpt, step, state, self.run_dir, {"best": best_like} if has_best else None, meta
        )
        restore_states(self.callbacks, meta["callbacks"])
        records = self.log.read()[: meta["epochs_logged"]]
        if self.main:
            self.log.truncate(meta["epochs_logged"])
        self.progress.message(
            f"Resuming from step {step} (epoch {meta['epoch'] + 1}, "
            f"batch {meta['next_batch']}) in {self.run_dir}"
        )
        if self.ckpt.unverified == step:
            self.progress.message(
                f"Note: checkpoint step {step} has no digest (written by an older "
                "modelspec), so its arrays could not be verified."
            )
        position = Position(
            meta["epoch"], meta["next_batch"], meta["epochs_logged"], meta["finished"]
        )
        return Resumed(state, position, extra["best"] if extra else None, records)
