"""A training run's checkpoints: what one holds besides the state, saving only sound
states, and resuming from the newest intact one.

Why apart from the loop: resume is where exactness and safety live — the data position
(epoch, next batch), callback states, the epochs already logged and the best weights
travel with the TrainState; a damaged step is set aside (never used silently) and the
previous one tried; with TerminateOnNaN only a state whose loss and weights are finite
is ever written, so "the last good checkpoint" is true.

Finite checks run where a host read happens anyway (each save, each epoch end), so a
stop names the window since the last passed check; `terminate_on_nan: strict` adds one
read of the loss per dispatch and names the exact step (the metrics hold the epoch's
running mean, as Keras's logs do, so it turns non-finite at the first bad step).
"""

from __future__ import annotations

import math
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
from modelspec.runtime.host_stage import HostStateDamaged
from modelspec.runtime.runlog import MetricsLog, Progress


@dataclass
class Position:
    """Where a run stands: the next batch to train and the epochs already logged."""

    epoch: int = 0
    next_batch: int = 0
    epochs_logged: int = 0
    finished: bool = False
    weights_swapped: bool = False
    """A final checkpoint whose weights are not the trained ones (EMA, restored best
    weights): training cannot go on from it."""
    epochs_target: int | None = None
    """The `train.epochs` the run was finished under (to tell a completed run, which
    may continue to more epochs, from one stopped early)."""


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
        terminate_on_nan: bool | str,
    ) -> None:
        self.run_dir, self.spec, self.callbacks = run_dir, spec, callbacks
        self.log, self.progress, self.main = log, progress, main
        self.terminate_on_nan = bool(terminate_on_nan)
        self.strict = terminate_on_nan == "strict"
        self.last_finite = 0
        """The step of the last passed finite check (a resumed checkpoint was one)."""
        self.host: Any = None
        """The run's HostStage: its state is saved in, and restored from, every
        checkpoint's metadata (a damaged one makes the checkpoint damaged)."""
        ck = spec.checkpoint
        self.ckpt = Checkpointer(
            run_dir / "checkpoints", max_to_keep=ck.max_to_keep, async_save=ck.async_save
        )
        # from shapes: `state` may be abstract (the initial state is still being made)
        self.state_bytes = sum(
            math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state)
        )
        self.nan_stopped = False
        self.best_ckpt: Checkpointer | None = None
        self.nan_checkpoint: int | None = None
        loss_of = objective.loss_mean.result

        def all_finite(metrics, params, batch_stats):  # one reduction, one host read
            ok = jnp.all(jnp.isfinite(loss_of(metrics["loss"])))
            for x in jax.tree_util.tree_leaves((params, batch_stats)):
                if jnp.issubdtype(x.dtype, jnp.inexact):
                    ok = ok & jnp.all(jnp.isfinite(x))
            return ok

        self._all_finite = jax.jit(all_finite)
        self._loss_finite = jax.jit(lambda metrics: jnp.isfinite(loss_of(metrics["loss"])))

    def meta(self, position: Position) -> dict[str, Any]:
        return {
            "epoch": position.epoch,
            "next_batch": position.next_batch,
            "epochs_logged": position.epochs_logged,
            "callbacks": callback_states(self.callbacks),
            "callback_types": [cb.spec.type for cb in self.callbacks],
            "finished": position.finished,
            "weights_swapped": position.weights_swapped,
            "epochs_target": position.epochs_target,
            "spec_name": self.spec.name,
            **(self.host.meta() if self.host else {}),
        }

    def save(self, state: Any, position: Position, best: Any = None) -> bool:
        """Save a checkpoint; with TerminateOnNaN only if its loss and weights are finite
        (False: training must stop, and the previous checkpoint stays the last one)."""
        if self.terminate_on_nan:
            if not bool(self._all_finite(state.metrics, state.params, state.batch_stats)):
                self.stop_on_nan(int(state.step))
                return False
            self.last_finite = int(state.step)
        extra = {"best": best} if best is not None else None
        ensure_space(self.run_dir, self.state_bytes * (2 if extra else 1))
        self.ckpt.save(int(state.step), state, self.meta(position), extra)
        return True

    def save_best(self, state: Any, position: Position) -> None:
        """Write the state to `<run>/best/` (ModelCheckpoint's save_best_only), the one
        checkpoint there, for `predict`/`evaluate`/`export --best`. Synchronous: it is
        rare (an improved epoch) and must be complete before the next can replace it."""
        if self.best_ckpt is None:
            self.best_ckpt = Checkpointer(self.run_dir / "best", max_to_keep=1, async_save=False)
        ensure_space(self.run_dir, self.state_bytes)
        self.best_ckpt.save(int(state.step), state, self.meta(position))

    def close(self) -> None:
        self.ckpt.close()
        if self.best_ckpt is not None:
            self.best_ckpt.close()

    def passed(self, loss_is_finite: bool, step: int) -> bool:
        """Record a finite check of the loss at `step` done by the caller (epoch end);
        False: it failed, training stops (the message names the step, or the window
        since the last passed check)."""
        if loss_is_finite:
            self.last_finite = step
            return True
        self.stop_on_nan(step)
        return False

    def step_finite(self, metrics: Any, step: int) -> bool:
        """`strict`: the loss after the dispatch ending at `step`, read at once (one
        device-to-host sync; reading it one dispatch late measured slower on CPU).
        False: training stops, naming this step."""
        return self.passed(bool(self._loss_finite(metrics)), step)

    def stop_on_nan(self, step: int) -> None:
        """Stop on a non-finite loss or weights, and say which checkpoint remains."""
        first = self.last_finite + 1
        if first == step:
            when = f"at step {step}"
        elif self.strict:  # a dispatch of several steps (steps_per_execution)
            when = f"in steps {first}-{step} (one dispatch of train.steps_per_execution)"
        else:
            since = "at the start" if first == 1 else f"at the check after step {first - 1}"
            when = (
                f"in steps {first}-{step} (finite {since}; "
                "train.terminate_on_nan: strict names the exact step)"
            )
        self.nan_stopped = True
        self.ckpt.wait()
        self.nan_checkpoint = kept = self.ckpt.latest_step()
        where = (
            f"the last good checkpoint, step {kept}, is kept in {self.run_dir}"
            if kept is not None
            else "no checkpoint was kept (none was saved before it)"
        )
        self.progress.message(
            f"TerminateOnNaN: non-finite loss or weights {when}; stopping: {where}."
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
        if self.host:
            try:
                self.host.load_meta(meta)
            except HostStateDamaged as exc:
                raise CheckpointDamaged(step, exc.reason) from None
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
        self.last_finite = step  # only finite states are saved (with TerminateOnNaN)
        position = Position(
            meta["epoch"],
            meta["next_batch"],
            meta["epochs_logged"],
            meta["finished"],
            # written before these were recorded: assume the safe answer (no continuing)
            meta.get("weights_swapped", True),
            meta.get("epochs_target"),
        )
        return Resumed(state, position, extra["best"] if extra else None, records)
