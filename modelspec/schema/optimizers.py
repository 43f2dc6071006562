"""The `optimizer:` section: Keras 3 optimizers with their names, arguments and defaults.

Each class mirrors one `keras.optimizers` class (defaults checked against the installed
Keras with `inspect.signature`), plus the arguments every Keras optimizer takes
(clipping, weight decay, EMA, gradient accumulation) in a shared base. Keeping Keras's
vocabulary means a Keras user's `get_config()` carries over; the runtime
(`modelspec.runtime.optim`) reproduces Keras's update rules, not optax's.

Every optimizer class registers itself in `OptimizerSpec.registry` and carries its own
facts: `update_rule` names the runtime function that implements it, `slots` (and
`state_slots()`) how many parameter-shaped arrays it keeps, which the memory estimate and
the sharding plan use without importing JAX.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from modelspec.schema.base import PositiveFloat
from modelspec.schema.schedules import LearningRate
from modelspec.schema.vocabulary import Registered, tagged_union

NonNegativeFloat = Annotated[float, Field(ge=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
"""An exponential-average decay rate in [0, 1)."""


class OptimizerSpec(Registered):
    """Arguments shared by every Keras optimizer, and the facts each optimizer class
    declares about itself."""

    registry: ClassVar[dict[str, type[OptimizerSpec]]] = {}
    update_rule: ClassVar[str]
    """`module:function` of the Keras update rule (`modelspec.runtime.optim`), resolved
    with `load_reference` when the optimizer is built."""
    slots: ClassVar[int] = 1
    """Parameter-shaped arrays the update rule keeps with its default options (Keras's
    optimizer variables, e.g. Adam's `momentum` and `velocity`)."""

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

    def rule_slots(self) -> int:
        """Parameter-shaped arrays the update rule keeps with these options (options that
        add a slot, e.g. AMSGrad or RMSprop's momentum, override this)."""
        return self.slots

    def state_slots(self) -> int:
        """Parameter-shaped arrays the optimizer keeps in all: the rule's slots, plus
        the EMA of the weights and the gradient accumulator when they are on."""
        return self.rule_slots() + int(self.use_ema) + int(bool(self.gradient_accumulation_steps))

    @model_validator(mode="after")
    def _check_clipping(self) -> OptimizerSpec:
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


class SGD(OptimizerSpec):
    """Gradient descent with optional (Nesterov) momentum (Keras `SGD`)."""

    update_rule = "modelspec.runtime.optim.rules_momentum:sgd"
    slots = 0

    type: Literal["SGD"]
    """Optimizer kind."""
    learning_rate: LearningRate = 0.01
    """A constant learning rate or a schedule mapping (`{type: CosineDecay, ...}`)."""
    momentum: float = Field(0.0, ge=0, le=1)
    """Momentum factor in [0, 1]; 0 is plain gradient descent."""
    nesterov: bool = False
    """Use Nesterov momentum."""

    def rule_slots(self) -> int:
        """Keras keeps a `momentum` slot only when `momentum` is not 0."""
        return self.slots + int(bool(self.momentum))


class _AdamFamily(OptimizerSpec):
    """Arguments of the Adam-like optimizers (Adam, Adamax, Nadam, Lamb): two decay rates
    and a stabilizing epsilon, with the defaults Keras gives all four. Declared once so
    their bounds and defaults cannot drift apart; a subclass re-declares one only to
    describe it in its own terms. `type` is declared here so that it keeps its place
    before the betas in every subclass's schema."""

    slots = 2

    type: str
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the second-moment estimate."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability."""


class Adam(_AdamFamily):
    """Adam (Keras `Adam`)."""

    update_rule = "modelspec.runtime.optim.rules_momentum:adam"

    type: Literal["Adam"]
    """Optimizer kind."""
    beta_1: Beta = 0.9
    """Decay rate of the first-moment (mean) estimate."""
    beta_2: Beta = 0.999
    """Decay rate of the second-moment (uncentered variance) estimate."""
    amsgrad: bool = False
    """Use the AMSGrad variant (running maximum of the second moment)."""

    def rule_slots(self) -> int:
        """AMSGrad adds `velocity_hat`, the running maximum of `velocity`."""
        return self.slots + int(self.amsgrad)


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras `AdamW`): weight decay is required."""

    type: Literal["AdamW"]  # type: ignore[assignment]
    """Optimizer kind."""
    weight_decay: NonNegativeFloat = 0.004
    """Decoupled weight decay: before each update, `var -= var * weight_decay * lr`."""


class RMSprop(OptimizerSpec):
    """RMSprop (Keras `RMSprop`)."""

    update_rule = "modelspec.runtime.optim.rules_accumulators:rmsprop"

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

    def rule_slots(self) -> int:
        """`momentum` > 0 adds a momentum slot, `centered` the average gradient."""
        return self.slots + int(bool(self.momentum)) + int(self.centered)


class Adagrad(OptimizerSpec):
    """Adagrad (Keras `Adagrad`)."""

    update_rule = "modelspec.runtime.optim.rules_accumulators:adagrad"

    type: Literal["Adagrad"]
    """Optimizer kind."""
    initial_accumulator_value: NonNegativeFloat = 0.1
    """Starting value of the per-parameter sum of squared gradients."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the accumulator for numerical stability."""


class Adadelta(OptimizerSpec):
    """Adadelta (Keras `Adadelta`)."""

    update_rule = "modelspec.runtime.optim.rules_accumulators:adadelta"
    slots = 2

    type: Literal["Adadelta"]
    """Optimizer kind."""
    rho: Beta = 0.95
    """Decay rate of the moving averages."""
    epsilon: NonNegativeFloat = 1e-7
    """Added inside the square roots for numerical stability."""


class Adamax(_AdamFamily):
    """Adamax, Adam with the infinity norm (Keras `Adamax`)."""

    update_rule = "modelspec.runtime.optim.rules_momentum:adamax"

    type: Literal["Adamax"]
    """Optimizer kind."""
    beta_2: Beta = 0.999
    """Decay rate of the exponentially weighted infinity norm."""


class Nadam(_AdamFamily):
    """Adam with Nesterov momentum (Keras `Nadam`)."""

    update_rule = "modelspec.runtime.optim.rules_momentum:nadam"

    type: Literal["Nadam"]
    """Optimizer kind."""


class Lion(OptimizerSpec):
    """Lion, sign of an interpolated momentum (Keras `Lion`)."""

    update_rule = "modelspec.runtime.optim.rules_momentum:lion"

    type: Literal["Lion"]
    """Optimizer kind."""
    beta_1: float = Field(0.9, gt=0, le=1)
    """Interpolation between momentum and gradient for the update's sign, in (0, 1]."""
    beta_2: float = Field(0.99, ge=0, le=1)
    """Decay rate of the momentum."""


class Lamb(_AdamFamily):
    """LAMB, Adam with a per-tensor trust ratio (Keras `Lamb`)."""

    update_rule = "modelspec.runtime.optim.rules_scaled:lamb"

    type: Literal["Lamb"]
    """Optimizer kind."""
    epsilon: NonNegativeFloat = 1e-7
    """Added to the denominator for numerical stability (Keras 3's default is 1e-7)."""


class Adafactor(OptimizerSpec):
    """Adafactor with factored second moments (Keras `Adafactor`)."""

    update_rule = "modelspec.runtime.optim.rules_scaled:adafactor"

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


OPTIMIZER_TYPES: dict[str, type[OptimizerSpec]] = OptimizerSpec.registry
"""Keras optimizer class name -> spec model (the registry itself)."""

Optimizer = tagged_union(OptimizerSpec.registry)
"""An optimizer: a mapping with `type:` (a Keras optimizer class name) and its arguments,
e.g. `{type: AdamW, learning_rate: 0.001, weight_decay: 0.01}`."""


def default_optimizer() -> OptimizerSpec:
    """What Keras's `compile()` uses when no optimizer is given: RMSprop, defaults."""
    return RMSprop(type="RMSprop")
