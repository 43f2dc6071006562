"""The `train` and `checkpoint` sections."""

from __future__ import annotations

from pydantic import Field

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
    terminate_on_nan: bool = True
    """Stop at the first non-finite loss and keep the last good checkpoint."""


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
