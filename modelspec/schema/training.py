"""The `train` and `checkpoint` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modelspec.schema.base import PositiveInt, SpecModel
from modelspec.schema.callbacks import Callback


class TrainSpec(SpecModel):
    """How long and how to train."""

    epochs: PositiveInt = 1
    """Passes over the training data."""
    steps_per_execution: PositiveInt = 1
    """Train steps fused into one device dispatch (`jax.lax.scan`); raises throughput of
    small models. Metrics and callbacks still see every epoch."""
    log_every_steps: PositiveInt = 50
    """How often training scalars go to TensorBoard (host reads happen only then)."""
    callbacks: list[Callback] = Field(default_factory=list)
    """Callbacks, applied in order (TerminateOnNaN is always on)."""
    terminate_on_nan: bool | Literal["strict"] = True
    """Stop on a non-finite loss and keep the last good checkpoint. `true` checks at
    every checkpoint save and epoch end (one fused reduction there, no per-step cost),
    so the message names the window of steps since the last finite check; `strict`
    also reads the loss after every step (one device-to-host sync per step, as Keras's
    TerminateOnNaN) and names the exact step; `false` never stops."""

    @field_validator("terminate_on_nan", mode="before")
    @classmethod
    def _nan_mode(cls, value: object) -> object:
        """One message for both branches of the union (not "must be true or false")."""
        if value is True or value is False or value == "strict":
            return value
        raise ValueError("must be true, false or 'strict'")


class CheckpointSpec(SpecModel):
    """Orbax checkpoints in `<run_dir>/checkpoints`; a rerun resumes from the latest."""

    save_every_steps: PositiveInt | None = None
    """Also save every N steps (within epochs). A final checkpoint is always written."""
    save_at_epoch_end: bool = True
    """Save at the end of every epoch (turn off for very short epochs and rely on
    `save_every_steps`: each save copies the whole state)."""
    max_to_keep: PositiveInt | None = 3
    """How many checkpoints to keep (null keeps all)."""
    async_save: bool = True
    """Write checkpoints in the background while training continues."""
