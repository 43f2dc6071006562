"""Callbacks with Keras semantics and checkpointable state.

Each callback sees the epoch's logs (host floats, read once per epoch) and returns what
the trainer must do: stop, restore the best weights, or change the learning-rate scale.
Their state (best value, wait counters) is plain JSON so resume continues exactly.

Each callback spec names its class here (`runtime` in `modelspec.schema.callbacks`);
`build_callbacks` constructs them all the same way, `Class(spec, base_lr=...)`. This
module holds only the implementations: the checks a spec's callbacks must pass before
step 1 are in `prerun_checks`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelspec.schema.callbacks import CallbackSpec, EarlyStopping, ReduceLROnPlateau
from modelspec.schema.vocabulary import load_reference


def _mode(mode: str, monitor: str) -> str:
    """Keras's `auto`: max for accuracy-like names and AUC, min otherwise."""
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return (
        "max"
        if ("acc" in name or name.startswith(("auc", "precision", "recall", "f1", "r2")))
        else "min"
    )


@dataclass
class Action:
    stop: bool = False
    save_best: bool = False
    """Keep these weights in memory (EarlyStopping restores them at the end)."""
    lr_scale: float | None = None
    messages: list[str] = field(default_factory=list)
    save_best_checkpoint: bool = False
    """Write the state to `<run>/best/` (ModelCheckpoint with save_best_only)."""
    save_checkpoint: bool = False
    """Take the run's regular checkpoint at this epoch end (ModelCheckpoint)."""


class EarlyStoppingCallback:
    """Keras 3's EarlyStopping, step for step (wait counts up before the comparison;
    only beating both the previous best and the baseline resets it). With
    `restore_best_weights`, the trainer restores the best weights at the end of
    training, as Keras's `on_train_end` does, whether or not training stopped early."""

    def __init__(self, spec: EarlyStopping, *, base_lr: float, run_dir: Path | None = None):
        del base_lr, run_dir  # neither is EarlyStopping's business
        self.spec = spec
        self.mode = _mode(spec.mode, spec.monitor)
        self.state = {
            "best": None,
            "wait": 0,
            "best_epoch": None,
            "stopped_epoch": 0,
            "has_best_weights": False,
        }

    def _improved(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        delta = self.spec.min_delta
        return value + delta < reference if self.mode == "min" else value - delta > reference

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> Action:
        value = logs.get(self.spec.monitor)
        s, action = self.state, Action()
        if value is None or epoch < self.spec.start_from_epoch:
            return action
        if self.spec.restore_best_weights and not s["has_best_weights"]:
            s["has_best_weights"], s["best_epoch"] = True, epoch
            action.save_best = True
        s["wait"] += 1
        if self._improved(value, s["best"]):
            s["best"], s["best_epoch"] = float(value), epoch
            action.save_best = self.spec.restore_best_weights
            if self.spec.baseline is None or self._improved(value, self.spec.baseline):
                s["wait"] = 0
            return action
        if s["wait"] >= self.spec.patience and epoch > 0:
            s["stopped_epoch"] = epoch
            action.stop = True
            if self.spec.verbose:
                action.messages.append(
                    f"EarlyStopping: {self.spec.monitor} did not improve for {s['wait']} "
                    f"epoch(s); best {s['best']:.6g} at epoch {(s['best_epoch'] or 0) + 1}"
                )
        return action

    @property
    def restores(self) -> bool:
        return self.spec.restore_best_weights and self.state["has_best_weights"]


class ReduceLROnPlateauCallback:
    """Keras 3's ReduceLROnPlateau: the new rate is reported as a scale of `base_lr`
    (the optimizer's constant learning rate), which the trainer sets in the optimizer
    state without recompiling."""

    persistent = ("scale",)
    """Kept when a finished run continues (a new `fit`): the rate lives in the optimizer."""

    def __init__(self, spec: ReduceLROnPlateau, *, base_lr: float, run_dir: Path | None = None):
        del run_dir
        self.spec = spec
        self.mode = _mode(spec.mode, spec.monitor)
        self.base_lr = base_lr
        self.state = {"best": None, "wait": 0, "cooldown": 0, "scale": 1.0}

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> Action:
        value = logs.get(self.spec.monitor)
        s, action = self.state, Action()
        if value is None:
            return action
        if s["cooldown"] > 0:
            s["cooldown"] -= 1
            s["wait"] = 0
        better = s["best"] is None or (
            value < s["best"] - self.spec.min_delta
            if self.mode == "min"
            else value > s["best"] + self.spec.min_delta
        )
        if better:
            s["best"], s["wait"] = float(value), 0
        elif s["cooldown"] <= 0:
            s["wait"] += 1
            if s["wait"] >= self.spec.patience:
                lr = self.base_lr * s["scale"]
                new_lr = max(lr * self.spec.factor, self.spec.min_lr)
                if lr - new_lr > 1e-12 and lr > 0:
                    s["scale"] = new_lr / self.base_lr
                    action.lr_scale = s["scale"]
                    if self.spec.verbose:
                        action.messages.append(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                            f"{new_lr:.6g}."
                        )
                s["cooldown"], s["wait"] = self.spec.cooldown, 0
        return action


class ModelCheckpointCallback:
    """Keras 3's ModelCheckpoint (`_should_save_model`, epoch frequency): with
    `save_best_only`, an epoch whose `monitor` beats the best so far (or
    `initial_value_threshold`) is written to `<run>/best/` by the trainer; without, the
    run's regular checkpoint is taken at every epoch end."""

    persistent = ("best",)
    """The best value stays with the weights in `<run>/best/` across a continued run."""

    def __init__(self, spec: Any, *, base_lr: float, run_dir: Path | None = None):
        del base_lr, run_dir
        self.spec = spec
        self.mode = _mode(spec.mode, spec.monitor)
        self.state = {"best": spec.initial_value_threshold}

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> Action:
        action, best = Action(), self.state["best"]
        if not self.spec.save_best_only:
            action.save_checkpoint = True
            if self.spec.verbose:
                action.messages.append(f"Epoch {epoch + 1}: saving a checkpoint of the run")
            return action
        value = logs.get(self.spec.monitor)
        if value is None:  # the pre-run check makes this unreachable for a logged name
            return action
        shown = "None" if best is None else f"{best:.5f}"
        improved = best is None or (value < best if self.mode == "min" else value > best)
        if improved:
            self.state["best"] = float(value)
            action.save_best_checkpoint = True
            if self.spec.verbose:
                action.messages.append(
                    f"Epoch {epoch + 1}: {self.spec.monitor} improved from {shown} to "
                    f"{value:.5f}, saving the weights to best/"
                )
        elif self.spec.verbose:
            action.messages.append(
                f"Epoch {epoch + 1}: {self.spec.monitor} did not improve from {shown}"
            )
        return action


class CSVLoggerCallback:
    """Keras 3's CSVLogger: the columns are fixed at the first row (`epoch`, then the
    logged names sorted, plus `val_` twins when there are no validation names), `epoch`
    counts from 0, a header unless appending to a non-empty file. Resume-safe: the
    file's length after each row travels in the checkpoint (`offset`), and a resumed run
    cuts the file back to it, so replayed epochs are not written twice."""

    def __init__(self, spec: Any, *, base_lr: float, run_dir: Path | None = None):
        del base_lr
        self.spec = spec
        self.path = Path(run_dir or ".") / spec.filename
        self.state = {"offset": None, "keys": None, "header": True}

    def on_train_begin(self, resumed: bool) -> None:
        """Keras's on_train_begin on a fresh run; on resume, back to the checkpoint."""
        if not _main_process():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        s = self.state
        if resumed and s["offset"] is not None and self.path.is_file():
            with open(self.path, "r+b") as f:
                f.truncate(min(s["offset"], self.path.stat().st_size))
            return
        if self.spec.append and self.path.is_file():
            with open(self.path, encoding="utf-8") as f:
                s["header"] = not f.readline()
        else:
            self.path.write_text("", encoding="utf-8")
            s["header"] = True
        s["offset"], s["keys"] = self.path.stat().st_size, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> Action:
        import csv

        s = self.state
        if s["keys"] is None:
            keys = sorted(logs)
            if keys and not any(k.startswith("val_") for k in keys):
                keys += [f"val_{k}" for k in keys]
            s["keys"] = keys
        if not _main_process():
            return Action()

        class Dialect(csv.excel):
            delimiter = self.spec.separator

        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", *s["keys"]], dialect=Dialect)
            if s["header"]:
                writer.writeheader()
                s["header"] = False
            writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in s["keys"]}})
        s["offset"] = self.path.stat().st_size
        return Action()


class LearningRateSchedulerCallback:
    """Keras 3's LearningRateScheduler given a built-in schedule: at the start of each
    epoch the learning rate becomes `schedule(epoch)`, set as a scale of the constant
    base rate in the optimizer state (no recompilation)."""

    def __init__(self, spec: Any, *, base_lr: float, run_dir: Path | None = None):
        del run_dir
        from modelspec.runtime.optim.schedules import build_schedule

        self.spec, self.base_lr = spec, base_lr
        self.schedule = build_schedule(spec.schedule)
        self.state: dict[str, Any] = {}

    def learning_rate(self, epoch: int) -> float:
        import numpy as np

        return float(np.asarray(self.schedule(np.int64(epoch))))

    def on_epoch_begin(self, epoch: int) -> Action:
        lr = self.learning_rate(epoch)
        action = Action(lr_scale=lr / self.base_lr)
        if self.spec.verbose:
            action.messages.append(
                f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}."
            )
        return action

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> Action:
        return Action()


def _main_process() -> bool:
    """Only process 0 writes files of the run directory."""
    from modelspec.compiler.sharding.mesh import is_main_process

    return is_main_process()


def build_callbacks(
    specs: list[CallbackSpec], *, base_lr: float, run_dir: Path | None = None
) -> list[Any]:
    """The runtime callback of every spec that names one, in order; `base_lr` is the
    learning rate training starts with (callbacks that change it scale from there),
    `run_dir` where callbacks that write files write them."""
    callbacks = [
        load_reference(spec.runtime)(spec, base_lr=base_lr, run_dir=run_dir)
        for spec in specs
        if spec.runtime is not None
    ]
    for cb in callbacks:
        cb.initial_state = copy.deepcopy(cb.state)
    return callbacks


def new_fit(callbacks: list[Any]) -> None:
    """A finished run continued to more epochs is Keras's second `fit(initial_epoch=...)`:
    every callback starts over (`on_train_begin`), except what a callback declares
    `persistent` (what Keras keeps outside the callback, e.g. the optimizer's rate)."""
    for cb in callbacks:
        kept = {k: cb.state[k] for k in getattr(cb, "persistent", ())}
        cb.state = {**copy.deepcopy(cb.initial_state), **kept}


def callback_states(callbacks: list[Any]) -> list[dict[str, Any]]:
    return [dict(cb.state) for cb in callbacks]


def restore_states(callbacks: list[Any], states: list[dict[str, Any]]) -> None:
    for cb, st in zip(callbacks, states, strict=True):
        cb.state = dict(st)
