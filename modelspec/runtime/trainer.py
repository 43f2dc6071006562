"""`modelspec train`: the epoch loop, validation, callbacks, logging, checkpoints, resume.

Resume is exact: a checkpoint holds the full TrainState (incl. dropout RNG and metric
accumulators), the data position (epoch, next batch; batch order is a pure function
of seed and epoch), callback states and the best weights. Checkpoints are only taken
at dispatch boundaries, so a resumed run replays the same compiled programs on the same
batches and ends bit-identical on CPU. metrics.jsonl is cut back to the checkpoint and
rewritten from there. A damaged checkpoint is set aside and the previous one used.

Ways a run ends besides finishing: TerminateOnNaN (only a checkpoint whose loss and
weights are finite is saved; `summary["stopped_on_nan"]`, exit code 3), SIGINT/SIGTERM
(`TrainingInterrupted`, exit 130/143), a full disk (one SpecError), another train on
the same run directory (refused by the run lock), a lost process of a multi-process
run (`runtime/peers.py`, exit code 4).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import yaml

from modelspec.compiler.load import load
from modelspec.compiler.sharding.mesh import is_main_process
from modelspec.errors import SpecError
from modelspec.runtime import feeding, peers
from modelspec.runtime.adapt import adapt_state
from modelspec.runtime.callbacks import Action, build_callbacks, new_fit
from modelspec.runtime.data.image_folder import write_class_names
from modelspec.runtime.data.prefetch import Chunk, Prefetcher
from modelspec.runtime.diskfull import disk_full_cause, disk_full_error
from modelspec.runtime.evaluation import evaluate_dataset, fresh_metrics, to_host
from modelspec.runtime.history import History, summarize
from modelspec.runtime.interrupt import StopSignals, TrainingInterrupted
from modelspec.runtime.lock import RunLock
from modelspec.runtime.optim import optimizers as opt
from modelspec.runtime.prerun_checks import check_callbacks
from modelspec.runtime.run_checkpoints import Position, RunCheckpoints
from modelspec.runtime.runlog import MetricsLog, Progress, TensorBoard
from modelspec.runtime.session import Session, open_session, optimizer_spec
from modelspec.runtime.spec_history import HISTORY, record_spec

__all__ = ["History", "Trainer", "train"]


class Trainer:
    def __init__(
        self,
        session: Session,
        run_dir: Path,
        *,
        progress: bool = True,
        tty: bool | None = None,
        max_steps: int | None = None,
    ):
        self.s = session
        self.spec = session.spec
        self.run_dir = run_dir
        self.max_steps = max_steps
        self.data = session.data
        d = self.spec.data
        self.batch_size, self.drop = d.batch_size, d.drop_remainder
        self.steps_per_epoch = self.data.train.num_batches(self.batch_size, self.drop)
        self.resident = None  # None: batches are built on the host per step
        self.started: float | None = None
        """When `train` was called (`first_step_seconds` counts from there: loading,
        checks and compiling included); None: from the loop's start."""
        self.first_step_seconds: float | None = None
        if not session.host:  # else placed once the text layers have encoded the data
            self._place_data()
        self.main = is_main_process()  # only process 0 prints and writes logs
        self.progress = Progress(
            self.spec.train.epochs, self.steps_per_epoch, enabled=progress and self.main, tty=tty
        )
        lr0 = optimizer_spec(self.spec).learning_rate
        self.base_lr = float(lr0) if isinstance(lr0, int | float) else 1.0
        self.callbacks: list[Any] = build_callbacks(
            self.spec.train.callbacks, base_lr=self.base_lr, run_dir=run_dir
        )
        self.on_start: Any = None
        """Called with the step training starts at, once it is sure steps will run
        (`train` records the spec there: spec.yaml never names a run that did not run)."""
        check_callbacks(self.spec, session)
        self.terminate_on_nan = self.spec.train.terminate_on_nan or any(
            cb.terminates_on_nan for cb in self.spec.train.callbacks
        )
        self.log = MetricsLog(run_dir / "metrics.jsonl")
        self.checkpoints = RunCheckpoints(
            run_dir,
            self.spec,
            self.callbacks,
            state=session.abstract_state,
            objective=session.objective,
            log=self.log,
            progress=self.progress,
            main=self.main,
            terminate_on_nan=self.terminate_on_nan,
        )
        self.checkpoints.host = session.host or None  # its state rides in checkpoints
        self.ckpt = self.checkpoints.ckpt
        self.records: list[dict[str, Any]] = []
        self.best = None
        self.epoch_seconds: list[float] = []
        self.signals = StopSignals(enabled=jax.process_count() == 1)

    def save(
        self, state, epoch: int, next_batch: int, epochs_logged: int, finished=False, swapped=False
    ) -> bool:
        """Checkpoint the state at this position (False: stopped on NaN, not saved)."""
        target = self.spec.train.epochs if finished else None
        position = Position(epoch, next_batch, epochs_logged, finished, swapped, target)
        return self.checkpoints.save(state, position, self.best)

    # -- loop --------------------------------------------------------------------
    def run(self) -> History:
        s, spec = self.s, self.spec
        with contextlib.ExitStack() as cleanup:  # every step runs, even if one fails
            cleanup.enter_context(self.signals)
            cleanup.callback(self.checkpoints.close)
            if self.resident is not None and not self.ckpt.steps():
                # a fresh run: compile the first step while the initial state is made
                self.resident.warm(s.abstract_state, 0, 0, 0)
            resumed = self.checkpoints.resume(s.state)
            state, self.best, self.records = resumed.state, resumed.best, resumed.records
            if s.host:  # text layers: their state, then the data they encode
                self._encode_text(resumed.restored)
            if not resumed.restored:  # Keras's adapt(): once, on the training split
                state = adapt_state(
                    s, state, self.data.train, self.batch_size, self.progress.message
                )
            at = resumed.position
            start_batch, logged, finished = at.next_batch, at.epochs_logged, at.finished
            fresh_fit = finished and at.epoch < spec.train.epochs and self._continue(at)
            finished = finished and not fresh_fit
            if not finished:  # steps will run: Keras's on_train_begin, and the spec recorded
                for cb in self.callbacks:
                    if hasattr(cb, "on_train_begin"):
                        cb.on_train_begin(resumed.restored and not fresh_fit)
                if self.on_start is not None:
                    self.on_start(int(state.step))
            tb = TensorBoard(
                self.run_dir / "tensorboard", purge_step=int(state.step) or None, enabled=self.main
            )
            cleanup.callback(tb.close)
            cleanup.callback(self.progress.close)
            spe = spec.train.steps_per_execution
            save_every = spec.checkpoint.save_every_steps
            t0, steps_run, stop = time.perf_counter(), 0, finished
            host_step = int(state.step)  # the host's count: no device sync per step
            epoch = at.epoch
            if self.resident is None and not finished:  # host batches, built ahead
                self.feed = cleanup.enter_context(self._prefetcher(epoch, start_batch))
            while epoch < spec.train.epochs and not stop:
                if start_batch == 0:
                    state = state._replace(metrics=fresh_metrics(s))
                    for cb in self.callbacks:  # LearningRateScheduler sets the epoch's rate
                        if hasattr(cb, "on_epoch_begin"):
                            state = self._apply(state, cb.on_epoch_begin(epoch))
                t_epoch = time.perf_counter()
                self.progress.start_epoch(epoch, start_batch)
                b = start_batch
                due_at_epoch_end = spec.checkpoint.save_at_epoch_end
                while b < self.steps_per_epoch:
                    n = min(spe, self.steps_per_epoch - b)
                    # a shorter last chunk compiles once more; resume replays the same chunks
                    if self.resident is not None:  # batches gathered on the device
                        state = self.resident.train(state, epoch, b, n, host_step)
                    else:
                        state = self._host_step(state, epoch, b, n)
                    before, host_step = host_step, host_step + n
                    b += n
                    if steps_run == 0:  # once: compile included, the first results ready
                        jax.block_until_ready(state.step)
                        self.first_step_seconds = time.perf_counter() - (self.started or t0)
                    steps_run += n
                    if self.checkpoints.strict and not self.checkpoints.step_finite(
                        state.metrics, host_step
                    ):  # terminate_on_nan: strict, one host read per dispatch
                        stop = True
                        break
                    crossed = save_every and host_step // save_every > before // save_every
                    if crossed and b == self.steps_per_epoch:
                        due_at_epoch_end = True  # saved after the epoch's logs and callbacks
                    elif crossed and not self.save(state, epoch, b, logged):
                        stop = True
                        break
                    every = spec.train.log_every_steps
                    if host_step // every > before // every:
                        values = to_host(s.objective.results(state.metrics))
                        tb.scalars("train_step", values, host_step)
                        self.progress.advance(n, values)
                    else:
                        self.progress.advance(n)
                    if b < self.steps_per_epoch:  # at an epoch's end: after its logs
                        self._check_signals(state, host_step, epoch, b, logged)
                    if self.max_steps is not None and steps_run >= self.max_steps:
                        self.ckpt.wait()
                        summary = {"first_step_seconds": self.first_step_seconds}
                        return History(list(self.records), summary, self.run_dir, state)
                if stop:
                    break
                logs = to_host(s.objective.results(state.metrics))
                self.epoch_seconds.append(time.perf_counter() - t_epoch)
                if self.terminate_on_nan and not self.checkpoints.passed(
                    math.isfinite(logs["loss"]), host_step
                ):
                    break
                logs.update({f"val_{k}": v for k, v in self.evaluate(state).items()})
                logs["learning_rate"] = float(
                    opt.current_learning_rate(state.opt_state, optimizer_spec(spec))
                )
                record = {"epoch": epoch + 1, "step": host_step, **logs}
                self.progress.end_epoch(epoch, logs, time.perf_counter() - t_epoch)
                for cb in self.callbacks:
                    action = cb.on_epoch_end(epoch, logs)
                    if action.save_best:
                        self.best = jax.tree_util.tree_map(
                            jnp.copy, (state.params, state.batch_stats, state.frozen)
                        )
                    state = self._apply(state, action)
                    stop = stop or action.stop
                    if action.save_best_checkpoint:  # ModelCheckpoint(save_best_only)
                        self.checkpoints.save_best(state, Position(epoch + 1, 0, epoch + 1))
                    due_at_epoch_end = due_at_epoch_end or action.save_checkpoint
                self.records.append(record)
                if self.main:
                    self.log.append(record)
                tb.scalars("epoch", logs, epoch + 1)
                logged = epoch + 1
                epoch, start_batch = epoch + 1, 0
                if not stop and epoch < spec.train.epochs and due_at_epoch_end:
                    stop = not self.save(state, epoch, 0, logged)  # finish() saves the last
                if not stop:  # else finish() below is next: the run ends anyway
                    self._check_signals(state, host_step, epoch, 0, logged)
            if not finished and not self.checkpoints.nan_stopped:
                state = self.finish(state, epoch, logged)
        wall = time.perf_counter() - t0
        history = History(list(self.records), {}, self.run_dir, state)
        history.summary = summarize(history.epochs, self.callbacks, wall, steps_run)
        history.summary.update(
            epoch_seconds=self.epoch_seconds,
            stopped_on_nan=self.checkpoints.nan_stopped,
            nan_checkpoint=self.checkpoints.nan_checkpoint,
            first_step_seconds=self.first_step_seconds,
        )
        return history

    def _place_data(self) -> None:
        """Keep small in-memory training data on the devices (`device_data.py`)."""
        self.resident = feeding.place(self.s, self.data.train)

    def _encode_text(self, restored: bool) -> None:
        """The text layers' state and the data they encode (`feeding.encode_text`)."""
        self.data = feeding.encode_text(
            self.s,
            self.data,
            restored=restored,
            run_dir=self.run_dir,
            main=self.main,
            report=self.progress.message,
        )
        self._place_data()

    def _host_step(self, state, epoch: int, index: int, count: int):
        """Batches `index .. index + count - 1` of `epoch` run in one dispatch: built on
        the host ahead of time and already on the devices (data not held on them)."""
        return self.s.train_step(state, self.feed.get(Chunk(epoch, index, count)))

    def _prefetcher(self, epoch: int, index: int) -> Prefetcher:
        """Host batches built ahead from (epoch, index) (`feeding.prefetcher`)."""
        return feeding.prefetcher(self.s, self.data.train, self.steps_per_epoch, epoch, index)

    def _check_signals(self, state, step: int, epoch: int, batch: int, logged: int) -> None:
        """After a dispatch, at a step boundary: on SIGINT/SIGTERM save a checkpoint here
        (unless one is; synchronous, so a rerun resumes at this very step) and stop."""
        if self.signals.received is None:
            return
        self.ckpt.wait()
        if self.ckpt.latest_step() != step:
            self.save(state, epoch, batch, logged)  # False on a NaN: the last good one stays
            self.ckpt.wait()
        where = dict(epoch=epoch, batch=(batch, self.steps_per_epoch)) if batch else {}
        raise TrainingInterrupted(
            self.signals.received,
            step,
            self.ckpt.latest_step(),
            self.run_dir,
            **(where or dict(epoch=epoch - 1)),
        )

    def _apply(self, state, action: Action):
        """A callback's learning-rate change (no recompilation) and its messages."""
        if action.lr_scale is not None:
            state = state._replace(opt_state=opt.set_lr_scale(state.opt_state, action.lr_scale))
        for m in action.messages:
            self.progress.message(m)
        return state

    def _continue(self, at: Position) -> bool:
        """A finished run asked for more epochs. Continue, as Keras's `fit(initial_epoch=
        <epochs done>, epochs=<new total>)` would, when it ran all its epochs and its
        final weights are the trained ones; else say why not and how to start over."""
        epochs, done = self.spec.train.epochs, at.epoch
        if not at.weights_swapped and at.epochs_target == done:
            self.progress.message(
                f"Continuing the finished run in {self.run_dir} from epoch {done + 1} to "
                f"train.epochs={epochs} (Keras's fit(initial_epoch={done}, epochs={epochs}))."
            )
            new_fit(self.callbacks)  # a new fit: callbacks start over, as in Keras
            self.best = None
            return True
        why = (
            "its final weights are not the trained ones (the optimizer's EMA weights or "
            "EarlyStopping's restored best weights), so training cannot go on from them"
            if at.weights_swapped
            else "it stopped early"
        )
        self.progress.message(
            f"The run in {self.run_dir} finished after epoch {done} and is not continued to "
            f"train.epochs={epochs}: {why}. Use --restart to train {epochs} epochs from the "
            "start."
        )
        return False

    def finish(self, state, epoch: int, logged: int):
        """Keras's end of training, in Keras's order: the optimizer swaps in the EMA
        weights (`finalize_variable_values`), then EarlyStopping restores the best ones."""
        ema = opt.ema_params(state.opt_state)
        if ema is not None:
            state = state._replace(params=ema)
        restores = any(getattr(cb, "restores", False) for cb in self.callbacks)
        if self.best is not None and restores:
            params, stats, frozen = self.best
            state = state._replace(params=params, batch_stats=stats, frozen=frozen)
        swapped = ema is not None or (self.best is not None and restores)
        self.save(state, epoch, 0, logged, finished=True, swapped=swapped)
        return state

    def evaluate(self, state) -> dict[str, float]:
        val = self.data.validation
        if val is None:
            return {}
        return evaluate_dataset(self.s, state, val, self.batch_size)


def train(
    source: Any,
    run_dir: str | Path | None = None,
    overrides: list[str] | tuple = (),
    *,
    restart: bool = False,
    progress: bool = True,
    tty: bool | None = None,
    max_steps: int | None = None,
    devices: list | None = None,
) -> History:
    """Train a spec; rerunning with the same run directory resumes from its latest
    checkpoint. Returns the History (per-epoch logs and a summary). Only one train may
    use a run directory at a time (SpecError otherwise); SIGINT/SIGTERM raise
    `TrainingInterrupted`; a full disk is a SpecError naming the space needed."""
    started = time.perf_counter()
    spec = load(source, overrides)
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / spec.name
    main = is_main_process()
    session = None
    peers.attach(run_dir)  # a lost peer's message names this run's newest checkpoint
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir) if main else contextlib.nullcontext() as lock:
            if lock is not None and lock.note and progress:
                print(lock.note, flush=True)
            session = open_session(spec, devices=devices)
            if session.objective is None:
                from modelspec.runtime.objective.objective import losses_by_output

                losses_by_output(session.spec)  # raises the positioned "needs a loss" error
            if restart:
                for sub in ("checkpoints", "tensorboard", "metrics.jsonl", "best", HISTORY):
                    target = run_dir / sub
                    shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
            if main:
                write_class_names(run_dir, session.spec)  # image_folder labels for predict
            trainer = Trainer(session, run_dir, progress=progress, tty=tty, max_steps=max_steps)
            trainer.started = started
            if main:  # spec.yaml (and its history) once steps are sure to run
                text = yaml.safe_dump(session.spec.dump(), sort_keys=False)
                trainer.on_start = partial(record_spec, run_dir, text)
            history = trainer.run()
            if main:  # curves.png, when matplotlib (the `plot` extra) is installed
                from modelspec.observe.curves import write_run_curves

                write_run_curves(run_dir)
            return history
    except SpecError:
        raise
    except Exception as exc:
        reason = disk_full_cause(exc)
        if reason is None:
            raise
        state_bytes = sum(
            x.nbytes for x in jax.tree_util.tree_leaves(session.state if session else ())
        )
        raise disk_full_error(run_dir, reason, state_bytes) from None
