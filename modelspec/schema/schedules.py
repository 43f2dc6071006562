"""Learning-rate schedules: the `learning_rate:` mapping form, with Keras's names.

Each class mirrors one `keras.optimizers.schedules` class (same argument names and
defaults) so a Keras user can copy a schedule's `get_config()` into a spec unchanged
(minus `name`). Only descriptions live here; `modelspec.runtime.optim.schedules` turns
them into jittable step -> learning-rate functions with Keras's exact numerics (each class
names its function in `builder`). Ranges are checked by field constraints, cross-field
rules by validators, so `check` catches them without JAX.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from modelspec.schema.base import NonNegativeInt, PositiveInt, SpecModel
from modelspec.schema.vocabulary import Registered, tagged_union

NonNegativeFloat = Annotated[float, Field(ge=0)]


class ScheduleSpec(Registered):
    """Base of every learning-rate schedule; each class registers itself under its
    `type` and names the runtime function that computes it."""

    registry: ClassVar[dict[str, type[ScheduleSpec]]] = {}
    builder: ClassVar[str]
    """`module:function` turning the spec into a jittable `step -> learning rate`
    function (`modelspec.runtime.optim.schedules`), resolved when the optimizer is built."""


class ExponentialDecay(ScheduleSpec):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)` (Keras
    `ExponentialDecay`); with `staircase` the exponent is floored."""

    builder = "modelspec.runtime.optim.schedules:exponential_decay"

    type: Literal["ExponentialDecay"]
    """Schedule kind."""
    initial_learning_rate: NonNegativeFloat
    """Learning rate at step 0."""
    decay_steps: PositiveInt
    """Steps over which the rate is multiplied by `decay_rate` once."""
    decay_rate: float = Field(gt=0)
    """Multiplier applied every `decay_steps` steps."""
    staircase: bool = False
    """Decay in discrete jumps every `decay_steps` steps instead of continuously."""


class PiecewiseConstantDecay(ScheduleSpec):
    """Constant rates between step boundaries (Keras `PiecewiseConstantDecay`):
    `values[0]` while `step <= boundaries[0]`, `values[i]` while
    `boundaries[i-1] < step <= boundaries[i]`, `values[-1]` after the last boundary."""

    builder = "modelspec.runtime.optim.schedules:piecewise_constant_decay"

    type: Literal["PiecewiseConstantDecay"]
    """Schedule kind."""
    boundaries: tuple[NonNegativeInt, ...] = Field(min_length=1)
    """Strictly increasing optimizer steps where the rate changes."""
    values: tuple[NonNegativeFloat, ...]
    """Learning rates, one more than `boundaries`."""

    @model_validator(mode="after")
    def _check_lengths_and_order(self) -> PiecewiseConstantDecay:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "`values` must have exactly one more element than `boundaries`. "
                f"Received: boundaries={list(self.boundaries)} (length "
                f"{len(self.boundaries)}) and values={list(self.values)} (length "
                f"{len(self.values)})."
            )
        for low, high in zip(self.boundaries, self.boundaries[1:], strict=False):
            if high <= low:
                raise ValueError(
                    "`boundaries` must be strictly increasing. "
                    f"Received: boundaries={list(self.boundaries)} ({high} follows {low})."
                )
        return self


class PolynomialDecay(ScheduleSpec):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate` over
    `decay_steps` (Keras `PolynomialDecay`); constant afterwards unless `cycle`."""

    builder = "modelspec.runtime.optim.schedules:polynomial_decay"

    type: Literal["PolynomialDecay"]
    """Schedule kind."""
    initial_learning_rate: NonNegativeFloat
    """Learning rate at step 0."""
    decay_steps: PositiveInt
    """Steps to go from the initial to the end learning rate."""
    end_learning_rate: NonNegativeFloat = 0.0001
    """Learning rate reached after `decay_steps`."""
    power: NonNegativeFloat = 1.0
    """Exponent of the polynomial (1.0 is linear decay)."""
    cycle: bool = False
    """Restart the decay with a longer period (next multiple of `decay_steps`) instead
    of staying at `end_learning_rate`."""


class InverseTimeDecay(ScheduleSpec):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)` (Keras
    `InverseTimeDecay`); with `staircase` the ratio is floored."""

    builder = "modelspec.runtime.optim.schedules:inverse_time_decay"

    type: Literal["InverseTimeDecay"]
    """Schedule kind."""
    initial_learning_rate: NonNegativeFloat
    """Learning rate at step 0."""
    decay_steps: PositiveInt
    """Steps per unit of decay."""
    decay_rate: NonNegativeFloat
    """How fast the rate decays."""
    staircase: bool = False
    """Decay in discrete jumps every `decay_steps` steps instead of continuously."""


class CosineDecay(ScheduleSpec):
    """Optional linear warmup, then cosine decay (Keras `CosineDecay`). Without
    `warmup_target` the decay starts at `initial_learning_rate`; with it the rate goes
    linearly from `initial_learning_rate` to `warmup_target` over `warmup_steps`, then
    decays from `warmup_target` to `warmup_target * alpha` over `decay_steps`."""

    builder = "modelspec.runtime.optim.schedules:cosine_decay"

    type: Literal["CosineDecay"]
    """Schedule kind."""
    initial_learning_rate: NonNegativeFloat
    """Learning rate at step 0 (start of the warmup if any, else of the decay)."""
    decay_steps: PositiveInt
    """Length of the cosine decay (after the warmup)."""
    alpha: float = Field(0.0, ge=0, le=1)
    """Final learning rate as a fraction of the decay's starting rate."""
    warmup_target: NonNegativeFloat | None = None
    """Learning rate reached at the end of the warmup; null for no warmup."""
    warmup_steps: NonNegativeInt = 0
    """Length of the linear warmup (needs `warmup_target`)."""

    @model_validator(mode="after")
    def _check_warmup(self) -> CosineDecay:
        if self.warmup_steps > 0 and self.warmup_target is None:
            raise ValueError(
                "`warmup_steps` has no effect without `warmup_target` (the rate the "
                f"warmup ends at). Received: warmup_steps={self.warmup_steps}, "
                "warmup_target=null."
            )
        return self


class CosineDecayRestarts(ScheduleSpec):
    """Cosine decay with warm restarts, SGDR (Keras `CosineDecayRestarts`): period `i`
    lasts `first_decay_steps * t_mul**i` steps and starts at
    `initial_learning_rate * m_mul**i`."""

    builder = "modelspec.runtime.optim.schedules:cosine_decay_restarts"

    type: Literal["CosineDecayRestarts"]
    """Schedule kind."""
    initial_learning_rate: NonNegativeFloat
    """Learning rate at step 0."""
    first_decay_steps: PositiveInt
    """Length of the first decay period."""
    t_mul: float = Field(2.0, ge=1)
    """Each period is this many times longer than the previous one (>= 1: with a
    shrinking period the finite total length would be exceeded and Keras returns NaN)."""
    m_mul: NonNegativeFloat = 1.0
    """Each period starts at this fraction of the previous period's initial rate."""
    alpha: float = Field(0.0, ge=0, le=1)
    """Minimum learning rate as a fraction of `initial_learning_rate`."""


SCHEDULE_TYPES: dict[str, type[ScheduleSpec]] = ScheduleSpec.registry
"""Keras schedule class name -> spec model (the registry itself)."""

Schedule = tagged_union(ScheduleSpec.registry)
"""A learning-rate schedule: a mapping with `type:` (a Keras schedule class name) and
its arguments, e.g. `{type: CosineDecay, initial_learning_rate: 0.001, decay_steps: 1000}`."""


def _learning_rate_kind(value: object) -> str:
    """Route a mapping (or a schedule model) to the schedule branch, anything else to the
    number branch, so an error names only the branch the user meant."""
    return "schedule" if isinstance(value, dict | SpecModel) else "constant"


LearningRate = Annotated[
    Annotated[Annotated[float, Field(ge=0)], Tag("constant")]
    | Annotated[Schedule, Tag("schedule")],
    Discriminator(_learning_rate_kind),
]
"""A constant learning rate (a number >= 0) or a schedule mapping."""
