"""The `optimizer:` section: Keras 3 optimizers with their names, arguments and defaults.

Each class mirrors one `keras.optimizers` class (defaults checked against the installed
Keras with `inspect.signature`), plus the arguments every Keras optimizer takes
(clipping, weight decay, EMA, gradient accumulation) in a shared base. Keeping Keras's
vocabulary means a Keras user's `get_config()` carries over; the runtime
(`modelspec.runtime.optimizers`) reproduces Keras's update rules, not optax's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelspec.schema.base import PositiveFloat, SpecModel
from modelspec.schema.schedules import LearningRate

NonNegativeFloat = Annotated[float, Field(ge=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
"""An exponential-average decay rate in [0, 1)."""


class OptimizerBase(SpecModel):
    """Arguments shared by every Keras optimizer."""

    learning_rate: LearningRate = 0.001
    """A constant learning rate or a schedule mapping (`{type: CosineDecay, ...}`)."""
    weight_decay: NonNegativeFloat | None = None
    """Decoupled weight decay: before each update, `var -= var * weight_decay * lr`."""
    clipnorm: PositiveFloat | None = None
    """Clip each gradient tensor separately to this L2 norm."""
    clipvalue: PositiveFloat | None = None
    """Clip every gradient element to [-clipvalue, clipvalue]."""
    global_clipnorm: PositiveFloat | None = None
    """Clip all gradients together so that their global L2 norm is at most this."""
    use_ema: bool = False
    """Keep an exponential moving average of the weights; the trained model gets the
    averaged weights at the end of training."""
    ema_momentum: float = Field(0.99, ge=0, le=1)
    """EMA update: `average = ema_momentum * average + (1 - ema_momentum) * weight`."""
    ema_overwrite_frequency: Annotated[int, Field(ge=1)] | None = None
    """With `use_ema`, overwrite the weights with their average every this many steps;
    null: only at the end of training."""
    gradient_accumulation_steps: Annotated[int, Field(ge=2)] | None = None
    """Update the weights every this many steps with the average of the gradients
    accumulated since the last update."""
    exclude_from_weight_decay: tuple[str, ...] = ()
    """Parameters whose path (e.g. `dense_1/bias`) contains any of these substrings get
    no weight decay, as Keras's `exclude_from_weight_decay(var_names=...)`."""

    @model_validator(mode="after")
    def _check_clipping(self) -> OptimizerBase:
        given = {
            name: getattr(self, name)
            for name in ("clipnorm", "clipvalue", "global_clipnorm")
            if getattr(self, name) is not None
        }
        if len(given) > 1:
            received = ", ".join(f"{k}={v}" for k, v in given.items())
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: {received}."
            )
        return self


class SGD(OptimizerBase):
    """Gradient descent with optional (Nesterov) momentum (Keras `SGD`)."""

    type: Literal["SGD"]
    """Optimizer kind."""
    learning_rate: LearningRate = 0.01
    """A constant learning rate or a schedule mapping (`{type: CosineDecay, ...}`)."""
    momentum: float = Field(0.0, ge=0, le=1)
    """Momentum factor in [0, 1]; 0 is plain gradient descent."""
    nesterov: bool = False
    """Use Nesterov momentum."""


class Adam(OptimizerBase):
    """Adam (Keras `Adam`)."""

    type: Literal["Adam"]
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment (mean) estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the second-moment (uncentered variance) estimate."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability."""
    amsgrad: bool = False
    """Use the AMSGrad variant (running maximum of the second moment)."""


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras `AdamW`): weight decay is required."""

    type: Literal["AdamW"]  # type: ignore[assignment]
    """Optimizer kind."""
    weight_decay: NonNegativeFloat = 0.004
    """Decoupled weight decay: before each update, `var -= var * weight_decay * lr`."""


class RMSprop(OptimizerBase):
    """RMSprop (Keras `RMSprop`)."""

    type: Literal["RMSprop"]
    """Optimizer kind."""
    rho: Beta = 0.9
    """Decay rate of the moving average of squared gradients."""
    momentum: NonNegativeFloat = 0.0
    """Momentum factor; 0 disables momentum."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability."""
    centered: bool = False
    """Normalize by the estimated variance of the gradient instead of its second moment."""


class Adagrad(OptimizerBase):
    """Adagrad (Keras `Adagrad`)."""

    type: Literal["Adagrad"]
    """Optimizer kind."""
    initial_accumulator_value: NonNegativeFloat = 0.1
    """Starting value of the per-parameter sum of squared gradients."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the accumulator for numerical stability."""


class Adadelta(OptimizerBase):
    """Adadelta (Keras `Adadelta`)."""

    type: Literal["Adadelta"]
    """Optimizer kind."""
    rho: Beta = 0.95
    """Decay rate of the moving averages."""
    epsilon: NonNegativeFloat = 1e-7
    """Added inside the square roots for numerical stability."""


class Adamax(OptimizerBase):
    """Adamax, Adam with the infinity norm (Keras `Adamax`)."""

    type: Literal["Adamax"]
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the exponentially weighted infinity norm."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability."""


class Nadam(OptimizerBase):
    """Adam with Nesterov momentum (Keras `Nadam`)."""

    type: Literal["Nadam"]
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the second-moment estimate."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability."""


class Lion(OptimizerBase):
    """Lion, sign of an interpolated momentum (Keras `Lion`)."""

    type: Literal["Lion"]
    """Optimizer kind."""
    beta_1: float = Field(0.9, gt=0, le=1)
    """Interpolation between momentum and gradient for the update's sign, in (0, 1]."""
    beta_2: float = Field(0.99, ge=0, le=1)
    """Decay rate of the momentum."""


class Lamb(OptimizerBase):
    """LAMB, Adam with a per-tensor trust ratio (Keras `Lamb`)."""

    type: Literal["Lamb"]
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the second-moment estimate."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability (Keras 3's default is 1e-7)."""


class Adafactor(OptimizerBase):
    """Adafactor with factored second moments (Keras `Adafactor`)."""

    type: Literal["Adafactor"]
    """Optimizer kind."""
    beta_2_decay: float = Field(-0.8, le=0)
    """Exponent of the second-moment decay schedule `1 - step ** beta_2_decay`."""
    epsilon_1: NonNegativeFloat = 1e-30
    """Added to squared gradients."""
    epsilon_2: NonNegativeFloat = 1e-3
    """Lower bound of the parameter scale used for the relative step size."""
    clip_threshold: PositiveFloat = 1.0
    """Updates are scaled down when their RMS exceeds this."""
    relative_step: bool = True
    """Cap the learning rate at `1 / sqrt(step)` (Keras applies this cap to the step size
    whatever this flag says, so it has no numerical effect; kept for compatibility)."""


OPTIMIZER_TYPES: dict[str, type[OptimizerBase]] = {
    cls.__name__: cls
    for cls in (
        SGD,
        Adam,
        AdamW,
        RMSprop,
        Adagrad,
        Adadelta,
        Adamax,
        Nadam,
        Lion,
        Lamb,
        Adafactor,
    )
}
"""Keras optimizer class name -> spec model."""

Optimizer = Annotated[
    SGD | Adam | AdamW | RMSprop | Adagrad | Adadelta | Adamax | Nadam | Lion | Lamb | Adafactor,
    Field(discriminator="type"),
]
"""An optimizer: a mapping with `type:` (a Keras optimizer class name) and its arguments,
e.g. `{type: AdamW, learning_rate: 0.001, weight_decay: 0.01}`."""
