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

from dataclasses import dataclass, field
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
    lr_scale: float | None = None
    messages: list[str] = field(default_factory=list)


class EarlyStoppingCallback:
    """Keras 3's EarlyStopping, step for step (wait counts up before the comparison;
    only beating both the previous best and the baseline resets it). With
    `restore_best_weights`, the trainer restores the best weights at the end of
    training, as Keras's `on_train_end` does, whether or not training stopped early."""

    def __init__(self, spec: EarlyStopping, *, base_lr: float):
        del base_lr  # the learning rate is not EarlyStopping's business
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
    """Keras 3's ReduceLROnPlateau: the new rate is reported as a scale of `base_lr`
    (the optimizer's constant learning rate), which the trainer sets in the optimizer
    state without recompiling."""

    def __init__(self, spec: ReduceLROnPlateau, *, base_lr: float):
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


def build_callbacks(specs: list[CallbackSpec], *, base_lr: float) -> list[Any]:
    """The runtime callback of every spec that names one, in order; `base_lr` is the
    learning rate training starts with (callbacks that change it scale from there)."""
    return [
        load_reference(spec.runtime)(spec, base_lr=base_lr)
        for spec in specs
        if spec.runtime is not None
    ]


def callback_states(callbacks: list[Any]) -> list[dict[str, Any]]:
    return [dict(cb.state) for cb in callbacks]


def restore_states(callbacks: list[Any], states: list[dict[str, Any]]) -> None:
    for cb, st in zip(callbacks, states, strict=True):
        cb.state = dict(st)
