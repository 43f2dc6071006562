"""Training callbacks (Keras names and arguments).

Each callback class registers itself in `CallbackSpec.registry` and names, in `runtime`,
the class that implements it (`modelspec.runtime.callbacks`), so the trainer builds every
callback the same way and a new callback is one schema class plus one runtime class.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from modelspec.schema.base import NonNegativeInt
from modelspec.schema.schedules import Schedule
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
    sets_lr: ClassVar[bool] = False
    """True when the callback sets the learning rate as a multiple of the optimizer's
    constant rate, which therefore must not be 0."""
    terminates_on_nan: ClassVar[bool] = False
    """True when the callback turns on the stop at the first non-finite loss."""

    type: str
    """Callback kind (Keras class name)."""
    verbose: NonNegativeInt = 0
    """Keras's `verbose`: 0 silent, 1 (or more) prints the callback's messages (improved,
    stopped, learning rate changed, checkpoint written)."""


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


class ModelCheckpoint(CallbackSpec):
    """Keras's ModelCheckpoint, writing into the run directory (modelspec owns it, so
    Keras's `filepath` is refused): with `save_best_only`, the weights of the best epoch
    by `monitor` go to `<run>/best/` (`predict`/`evaluate`/`export --best` use them);
    without, a checkpoint of the run is taken at every epoch end."""

    runtime = "modelspec.runtime.callbacks:ModelCheckpointCallback"

    type: Literal["ModelCheckpoint"]
    filepath: str | None = None
    """Not accepted: the files go into the run directory (see above)."""
    monitor: str = "val_loss"
    """Logged quantity that decides the best epoch."""
    save_best_only: bool = False
    """Keep only the best epoch's weights (in `<run>/best/`)."""
    save_weights_only: bool = False
    """Accepted for Keras compatibility; a checkpoint always holds the weights and the
    training state (optimizer, position), which `--best` restores the weights of."""
    mode: Literal["auto", "min", "max"] = "auto"
    """Whether lower or higher is better; `auto` infers it from the name (Keras rule)."""
    save_freq: Literal["epoch"] = "epoch"
    """When to check: at the end of every epoch (Keras's batch counts are not supported)."""
    initial_value_threshold: float | None = None
    """The value the first best epoch must beat (Keras's `initial_value_threshold`)."""

    @field_validator("filepath")
    @classmethod
    def _no_filepath(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "modelspec writes ModelCheckpoint's weights into the run directory "
                "(<run>/best/ with save_best_only, else the run's checkpoints), so `filepath` "
                "is not used. Remove it; select the best weights with `--best`"
            )
        return value


class CSVLogger(CallbackSpec):
    """Keras's CSVLogger: one row per epoch (`epoch` from 0, then the logged values in
    sorted order), in a file of the run directory."""

    runtime = "modelspec.runtime.callbacks:CSVLoggerCallback"

    type: Literal["CSVLogger"]
    filename: str = Field(min_length=1)
    """File to write, relative to the run directory (no absolute path, no `..`)."""
    separator: str = Field(",", min_length=1, max_length=1)
    """Column separator (one character)."""
    append: bool = False
    """Append to an existing file (header only if it is empty), instead of overwriting
    it when training starts. A resumed run always continues its own file."""

    @field_validator("filename")
    @classmethod
    def _inside_run_dir(cls, value: str) -> str:
        parts = PurePosixPath(value.replace("\\", "/")).parts
        if value.startswith(("/", "\\")) or ":" in value or ".." in parts:
            raise ValueError(
                "must be a path inside the run directory (relative, without '..'), e.g. "
                "`filename: log.csv`"
            )
        return value


class LearningRateScheduler(CallbackSpec):
    """Keras's LearningRateScheduler with a built-in schedule: at the start of epoch `e`
    (from 0) the learning rate is `schedule(e)`: the schedule's step is the epoch index,
    as in Keras's `LearningRateScheduler(lambda e: float(schedule(e)))`. The optimizer's
    own learning rate must be a non-zero constant (it is replaced each epoch)."""

    runtime = "modelspec.runtime.callbacks:LearningRateSchedulerCallback"
    needs_constant_lr = True
    sets_lr = True

    type: Literal["LearningRateScheduler"]
    schedule: Schedule
    """A schedule mapping, e.g. `{type: ExponentialDecay, initial_learning_rate: 0.01,
    decay_steps: 1, decay_rate: 0.9}`."""


Callback = tagged_union(CallbackSpec.registry)
CALLBACK_TYPES: dict[str, type[CallbackSpec]] = CallbackSpec.registry
"""Callback class name -> spec model (the registry itself)."""
