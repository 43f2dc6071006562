"""Training callbacks (Keras names and arguments).

Each callback class registers itself in `CallbackSpec.registry` and names, in `runtime`,
the class that implements it (`modelspec.runtime.callbacks`), so the trainer builds every
callback the same way and a new callback is one schema class plus one runtime class.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import NonNegativeInt
from modelspec.schema.vocabulary import Registered, tagged_union


class CallbackSpec(Registered):
    """Base of every callback spec, and the facts each callback class declares."""

    registry: ClassVar[dict[str, type[CallbackSpec]]] = {}
    runtime: ClassVar[str | None] = None
    """`module:Class` of the per-epoch implementation, built as `Class(spec, base_lr=...)`;
    None for a callback the step loop implements itself (TerminateOnNaN)."""
    needs_constant_lr: ClassVar[bool] = False
    """True when the callback rescales the learning rate, which a schedule would
    override (Keras refuses the combination too)."""
    terminates_on_nan: ClassVar[bool] = False
    """True when the callback turns on the stop at the first non-finite loss."""

    type: str
    """Callback kind (Keras class name)."""


class EarlyStopping(CallbackSpec):
    """Stop when `monitor` has stopped improving for `patience` epochs."""

    runtime = "modelspec.runtime.callbacks:EarlyStoppingCallback"

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


class ReduceLROnPlateau(CallbackSpec):
    """Multiply the learning rate by `factor` when `monitor` stops improving."""

    runtime = "modelspec.runtime.callbacks:ReduceLROnPlateauCallback"
    needs_constant_lr = True

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


class TerminateOnNaN(CallbackSpec):
    """Stop as soon as the loss is NaN or infinite (on by default; keeps the last good
    checkpoint)."""

    terminates_on_nan = True

    type: Literal["TerminateOnNaN"]


Callback = tagged_union(CallbackSpec.registry)
CALLBACK_TYPES: dict[str, type[CallbackSpec]] = CallbackSpec.registry
"""Callback class name -> spec model (the registry itself)."""
