"""Callbacks with Keras semantics and checkpointable state.

Each callback sees the epoch's logs (host floats, read once per epoch) and returns what
the trainer must do: stop, restore the best weights, or change the learning-rate scale.
Their state (best value, wait counters) is plain JSON so resume continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelspec.errors import Diagnostic, SpecError, did_you_mean
from modelspec.runtime.session import Session, optimizer_spec
from modelspec.schema.callbacks import EarlyStopping, ReduceLROnPlateau


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
    lr_scale: float | None = None
    messages: list[str] = field(default_factory=list)


class EarlyStoppingCallback:
    """Keras 3's EarlyStopping, step for step (wait counts up before the comparison;
    only beating both the previous best and the baseline resets it). With
    `restore_best_weights`, the trainer restores the best weights at the end of
    training, as Keras's `on_train_end` does, whether or not training stopped early."""

    def __init__(self, spec: EarlyStopping):
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
            action.messages.append(
                f"EarlyStopping: {self.spec.monitor} did not improve for {s['wait']} epoch(s); "
                f"best {s['best']:.6g} at epoch {(s['best_epoch'] or 0) + 1}"
            )
        return action

    @property
    def restores(self) -> bool:
        return self.spec.restore_best_weights and self.state["has_best_weights"]


class ReduceLROnPlateauCallback:
    def __init__(self, spec: ReduceLROnPlateau, base_lr: float):
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
                    action.messages.append(f"ReduceLROnPlateau: learning rate -> {new_lr:.6g}")
                s["cooldown"], s["wait"] = self.spec.cooldown, 0
        return action


def callback_states(callbacks: list[Any]) -> list[dict[str, Any]]:
    return [dict(cb.state) for cb in callbacks]


def restore_states(callbacks: list[Any], states: list[dict[str, Any]]) -> None:
    for cb, st in zip(callbacks, states, strict=True):
        cb.state = dict(st)


def check_callbacks(spec, session: Session) -> None:
    """Before step 1: every monitored name must be logged (Keras would only warn and
    never act), and ReduceLROnPlateau needs a constant learning rate (as in Keras)."""
    names = ["loss", *(k for k in session.objective.init_metrics() if k != "loss")]
    has_val = session.data.validation is not None
    logged = names + ([f"val_{n}" for n in names] if has_val else [])
    errors = []
    for i, cb in enumerate(spec.train.callbacks):
        monitor = getattr(cb, "monitor", None)
        pos = spec._source.locate(("train", "callbacks", i)) if spec._source else ("<spec>", 0, 0)
        if monitor is not None and monitor not in logged:
            hint = did_you_mean(monitor, logged) or "Logged: " + ", ".join(logged) + "."
            if monitor.startswith("val_") and not has_val:
                hint = "There is no validation data: set data.validation_split or data.validation."
            errors.append(
                Diagnostic(
                    pos[0],
                    pos[1],
                    pos[2],
                    f"train.callbacks[{i}].monitor",
                    f"{cb.type} monitors '{monitor}', which is never logged",
                    received=f"monitor={monitor!r}",
                    hint=hint,
                )
            )
        lr = optimizer_spec(spec).learning_rate
        if cb.type == "ReduceLROnPlateau" and not isinstance(lr, int | float):
            errors.append(
                Diagnostic(
                    pos[0],
                    pos[1],
                    pos[2],
                    f"train.callbacks[{i}]",
                    "ReduceLROnPlateau needs a constant learning rate, but the "
                    f"optimizer uses a {lr.type} schedule (Keras refuses this too)",
                    hint="Use a number for optimizer.learning_rate, or drop the callback.",
                )
            )
    if errors:
        raise SpecError(errors)
