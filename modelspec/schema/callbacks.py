"""Training callbacks (Keras names and arguments)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelspec.schema.base import NonNegativeInt, SpecModel


class EarlyStopping(SpecModel):
    """Stop when `monitor` has stopped improving for `patience` epochs."""

    type: Literal["EarlyStopping"]
    monitor: str = "val_loss"
    """Logged quantity to watch (e.g. `val_loss`, `val_accuracy`)."""
    min_delta: float = Field(0.0, ge=0)
    """Smallest change that counts as an improvement."""
    patience: NonNegativeInt = 0
    """Epochs without improvement before stopping."""
    mode: Literal["auto", "min", "max"] = "auto"
    """Whether lower or higher is better; `auto` infers it from the name (Keras rule)."""
    baseline: float | None = None
    """Stop if the monitored value does not beat this baseline."""
    restore_best_weights: bool = False
    """Restore the weights of the best epoch when training stops."""
    start_from_epoch: NonNegativeInt = 0
    """Epochs to wait before watching for improvement."""


class ReduceLROnPlateau(SpecModel):
    """Multiply the learning rate by `factor` when `monitor` stops improving."""

    type: Literal["ReduceLROnPlateau"]
    monitor: str = "val_loss"
    """Logged quantity to watch."""
    factor: float = Field(0.1, gt=0, lt=1)
    """Factor by which the learning rate is reduced."""
    patience: NonNegativeInt = 10
    """Epochs without improvement before reducing."""
    mode: Literal["auto", "min", "max"] = "auto"
    """Whether lower or higher is better."""
    min_delta: float = Field(0.0001, ge=0)
    """Smallest change that counts as an improvement."""
    cooldown: NonNegativeInt = 0
    """Epochs to wait after a reduction before watching again."""
    min_lr: float = Field(0.0, ge=0)
    """Lower bound on the learning rate."""


class TerminateOnNaN(SpecModel):
    """Stop as soon as the loss is NaN or infinite (on by default; keeps the last good
    checkpoint)."""

    type: Literal["TerminateOnNaN"]


Callback = Annotated[
    EarlyStopping | ReduceLROnPlateau | TerminateOnNaN, Field(discriminator="type")
]
CALLBACK_TYPES = {c.__name__: c for c in (EarlyStopping, ReduceLROnPlateau, TerminateOnNaN)}
