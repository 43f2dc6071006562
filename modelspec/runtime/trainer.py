"""`modelspec train`: the epoch loop, validation, callbacks, logging, checkpoints, resume.

Resume is exact: a checkpoint holds the full TrainState (incl. dropout RNG and metric
accumulators), the data position (epoch, next batch; batch order is a pure function
of seed and epoch), callback states and the best weights. Checkpoints are only taken
at dispatch boundaries, so a resumed run replays the same compiled programs on the same
batches and ends bit-identical on CPU. metrics.jsonl is cut back to the checkpoint and
rewritten from there.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from modelspec.runtime import optimizers as opt
from modelspec.runtime.callbacks import (
    EarlyStoppingCallback,
    ReduceLROnPlateauCallback,
    callback_states,
    check_callbacks,
    restore_states,
)
from modelspec.runtime.checkpoint import Checkpointer, restore_checked, run_dir_error
from modelspec.runtime.distribute import is_main_process, put_batch
from modelspec.runtime.evaluation import evaluate_dataset, fresh_metrics, to_host
from modelspec.runtime.runlog import MetricsLog, Progress, TensorBoard
from modelspec.runtime.session import Session, open_session, optimizer_spec
from modelspec.runtime.steps import stack


@dataclass
class History:
    """What `train` returns: one dict per epoch (as in metrics.jsonl) and a summary."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    state: Any = None


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
        self.main = is_main_process()  # only process 0 prints and writes logs
        self.progress = Progress(
            self.spec.train.epochs, self.steps_per_epoch, enabled=progress and self.main, tty=tty
        )
        lr0 = optimizer_spec(self.spec).learning_rate
        self.base_lr = float(lr0) if isinstance(lr0, int | float) else 1.0
        self.callbacks: list[Any] = []
        for cb in self.spec.train.callbacks:
            if cb.type == "EarlyStopping":
                self.callbacks.append(EarlyStoppingCallback(cb))
            elif cb.type == "ReduceLROnPlateau":
                self.callbacks.append(ReduceLROnPlateauCallback(cb, self.base_lr))
        check_callbacks(self.spec, session)
        self.terminate_on_nan = self.spec.train.terminate_on_nan or any(
            cb.type == "TerminateOnNaN" for cb in self.spec.train.callbacks
        )
        ck = self.spec.checkpoint
        self.ckpt = Checkpointer(
            run_dir / "checkpoints", max_to_keep=ck.max_to_keep, async_save=ck.async_save
        )
        self.log = MetricsLog(run_dir / "metrics.jsonl")
        self.records: list[dict[str, Any]] = []
        self.best = None
        self.nan_stopped = False
        self.epoch_seconds: list[float] = []

    # -- checkpoint --------------------------------------------------------------
    def meta(self, epoch: int, next_batch: int, epochs_logged: int, finished: bool = False):
        return {
            "epoch": epoch,
            "next_batch": next_batch,
            "epochs_logged": epochs_logged,
            "callbacks": callback_states(self.callbacks),
            "callback_types": [cb.spec.type for cb in self.callbacks],
            "finished": finished,
            "spec_name": self.spec.name,
        }

    def save(self, state, epoch: int, next_batch: int, epochs_logged: int, finished=False):
        extra = {"best": self.best} if self.best is not None else None
        self.ckpt.save(
            int(state.step), state, self.meta(epoch, next_batch, epochs_logged, finished), extra
        )

    def resume(self, state):
        step = self.ckpt.latest_step()
        if step is None:
            return state, 0, 0, 0, False
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
        self.best = extra["best"] if extra else None
        restore_states(self.callbacks, meta["callbacks"])
        self.records = self.log.read()[: meta["epochs_logged"]]
        if self.main:
            self.log.truncate(meta["epochs_logged"])
        self.progress.message(
            f"Resuming from step {step} (epoch {meta['epoch'] + 1}, "
            f"batch {meta['next_batch']}) in {self.run_dir}"
        )
        return state, meta["epoch"], meta["next_batch"], meta["epochs_logged"], meta["finished"]

    # -- loop --------------------------------------------------------------------
    def run(self) -> History:
        s, spec = self.s, self.spec
        state, start_epoch, start_batch, logged, finished = self.resume(s.state)
        tb = TensorBoard(
            self.run_dir / "tensorboard", purge_step=int(state.step) or None, enabled=self.main
        )
        spe = spec.train.steps_per_execution
        save_every = spec.checkpoint.save_every_steps
        t0, steps_run, stop = time.perf_counter(), 0, finished
        host_step = int(state.step)  # the host's count: no device sync per step
        epoch = start_epoch
        try:
            while epoch < spec.train.epochs and not stop:
                if start_batch == 0:
                    state = state._replace(metrics=fresh_metrics(s))
                t_epoch = time.perf_counter()
                self.progress.start_epoch(epoch, start_batch)
                b = start_batch
                due_at_epoch_end = spec.checkpoint.save_at_epoch_end
                while b < self.steps_per_epoch:
                    n = min(spe, self.steps_per_epoch - b)
                    batches = [
                        self.data.train.batch(
                            epoch,
                            b + i,
                            self.batch_size,
                            shuffle=spec.data.shuffle,
                            seed=spec.seed,
                            drop_remainder=self.drop,
                        )
                        for i in range(n)
                    ]
                    # a shorter last chunk compiles once more; resume replays the same chunks
                    host = batches[0] if spe == 1 else stack(batches)
                    state = s.train_step(state, put_batch(s.dist, host, stacked=spe > 1))
                    before, host_step = host_step, host_step + n
                    b += n
                    steps_run += n
                    crossed = save_every and host_step // save_every > before // save_every
                    if crossed and b == self.steps_per_epoch:
                        due_at_epoch_end = True  # saved after the epoch's logs and callbacks
                    elif crossed:
                        if not self._finite(state):
                            stop = self._nan(host_step, epoch)
                            break
                        self.save(state, epoch, b, logged)
                    every = spec.train.log_every_steps
                    if host_step // every > before // every:
                        values = to_host(s.objective.results(state.metrics))
                        tb.scalars("train_step", values, host_step)
                        self.progress.advance(n, values)
                    else:
                        self.progress.advance(n)
                    if self.max_steps is not None and steps_run >= self.max_steps:
                        self.ckpt.wait()
                        return History(list(self.records), {}, self.run_dir, state)
                if stop:
                    break
                logs = to_host(s.objective.results(state.metrics))
                self.epoch_seconds.append(time.perf_counter() - t_epoch)
                if self.terminate_on_nan and not math.isfinite(logs["loss"]):
                    stop = self._nan(host_step, epoch)
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
                    if action.lr_scale is not None:
                        state = state._replace(
                            opt_state=opt.set_lr_scale(state.opt_state, action.lr_scale)
                        )
                    for m in action.messages:
                        self.progress.message(m)
                    stop = stop or action.stop
                self.records.append(record)
                if self.main:
                    self.log.append(record)
                tb.scalars("epoch", logs, epoch + 1)
                logged = epoch + 1
                epoch, start_batch = epoch + 1, 0
                if not stop and epoch < spec.train.epochs and due_at_epoch_end:
                    self.save(state, epoch, 0, logged)  # the last one is saved by finish()
            if not finished and not self.nan_stopped:
                state = self.finish(state, epoch, logged)
        finally:
            tb.close()
            self.ckpt.close()
        wall = time.perf_counter() - t0
        history = History(list(self.records), {}, self.run_dir, state)
        history.summary = self.summarize(history.epochs, wall, steps_run)
        return history

    def finish(self, state, epoch: int, logged: int):
        """Keras's end of training, in Keras's order: the optimizer swaps in the EMA
        weights (`finalize_variable_values`), then EarlyStopping restores the best ones."""
        ema = opt.ema_params(state.opt_state)
        if ema is not None:
            state = state._replace(params=ema)
        if self.best is not None and any(getattr(cb, "restores", False) for cb in self.callbacks):
            params, stats, frozen = self.best
            state = state._replace(params=params, batch_stats=stats, frozen=frozen)
        self.save(state, epoch, 0, logged, finished=True)
        return state

    def evaluate(self, state) -> dict[str, float]:
        val = self.data.validation
        if val is None:
            return {}
        return evaluate_dataset(self.s, state, val, self.batch_size)

    def _finite(self, state) -> bool:
        if not self.terminate_on_nan:
            return True
        return bool(np.isfinite(np.asarray(self.s.objective.results(state.metrics)["loss"])))

    def _nan(self, step: int, epoch: int) -> bool:
        self.nan_stopped = True
        self.progress.message(
            f"TerminateOnNaN: non-finite loss by step {step} (epoch "
            f"{epoch + 1}); stopping. The last good checkpoint is kept."
        )
        return True

    def summarize(self, epochs: list[dict[str, Any]], wall: float, steps: int) -> dict[str, Any]:
        if not epochs:
            return {"wall_seconds": wall, "epoch_seconds": self.epoch_seconds}
        monitor = next(
            (cb.spec.monitor for cb in self.callbacks if hasattr(cb, "restores")),
            "val_loss" if "val_loss" in epochs[-1] else "loss",
        )
        mode_min = next(
            (cb.mode == "min" for cb in self.callbacks if hasattr(cb, "restores")),
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
            "epoch_seconds": self.epoch_seconds,
            "steps_per_second": steps / wall if wall > 0 else None,
        }


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
    checkpoint. Returns the History (per-epoch logs and a summary)."""
    session = open_session(source, overrides, devices=devices)
    if session.objective is None:
        from modelspec.runtime.objectives import losses_by_output

        losses_by_output(session.spec)  # raises the positioned "needs a loss" error
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / session.spec.name
    if restart and run_dir.exists():
        for sub in ("checkpoints", "tensorboard", "metrics.jsonl"):
            target = run_dir / sub
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        (run_dir / "spec.yaml").write_text(yaml.safe_dump(session.spec.dump(), sort_keys=False))
    return Trainer(session, run_dir, progress=progress, tty=tty, max_steps=max_steps).run()
