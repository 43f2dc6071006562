"""Vocabulary shared by layer specs: activation and initializer names (Keras's), and
the forms of a layer's `inputs:` (the fields every layer has are on
`schema.layers.base.LayerSpec`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from modelspec.schema.vocabulary import Registered, tagged_union

ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "log_sigmoid",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
)
"""Activation names as in `keras.activations` (same defaults: leaky_relu slope 0.2,
gelu exact, softmax over the last axis)."""

ActivationName = Literal[ACTIVATIONS]  # type: ignore[valid-type]

INITIALIZERS = (
    "zeros",
    "ones",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "uniform",
    "normal",
    "identity",
)

InitializerName = Literal[INITIALIZERS]  # type: ignore[valid-type]


def _snake(value: Any) -> Any:
    """Accept Keras class-name spellings too: 'GlorotUniform' -> 'glorot_uniform'."""
    if isinstance(value, str) and value[:1].isupper():
        return re.sub(r"(?<!^)(?=[A-Z])", "_", value).lower()
    return value


class InitializerSpec(Registered):
    """Base of the initializer mappings (`{type: RandomNormal, stddev: 0.02}`); each
    class registers itself under its `type`."""

    registry: ClassVar[dict[str, type[InitializerSpec]]] = {}

    type: str
    """Keras class name of the initializer."""


class RandomNormal(InitializerSpec):
    """Normal distribution (Keras `RandomNormal`)."""

    type: Literal["RandomNormal"]
    mean: float = 0.0
    """Mean of the distribution."""
    stddev: float = Field(0.05, gt=0)
    """Standard deviation."""


class TruncatedNormal(InitializerSpec):
    """Normal distribution cut at two standard deviations (Keras `TruncatedNormal`)."""

    type: Literal["TruncatedNormal"]
    mean: float = 0.0
    """Mean of the distribution."""
    stddev: float = Field(0.05, gt=0)
    """Standard deviation before truncation."""


class RandomUniform(InitializerSpec):
    """Uniform distribution on [minval, maxval) (Keras `RandomUniform`)."""

    type: Literal["RandomUniform"]
    minval: float = -0.05
    """Lower bound."""
    maxval: float = 0.05
    """Upper bound."""


class Constant(InitializerSpec):
    """Every element set to `value` (Keras `Constant`)."""

    type: Literal["Constant"]
    value: float = 0.0
    """The constant."""


class VarianceScaling(InitializerSpec):
    """Keras `VarianceScaling`: the family behind glorot/he/lecun initializers."""

    type: Literal["VarianceScaling"]
    scale: float = Field(1.0, gt=0)
    """Scaling factor."""
    mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in"
    """Which fan to divide the scale by."""
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = "truncated_normal"
    """Distribution to draw from."""


class Orthogonal(InitializerSpec):
    """Orthogonal matrix times `gain` (Keras `Orthogonal`)."""

    type: Literal["Orthogonal"]
    gain: float = 1.0
    """Multiplicative factor."""


InitializerConfig = tagged_union(InitializerSpec.registry)
Initializer = Annotated[InitializerName, BeforeValidator(_snake)] | InitializerConfig
"""A Keras initializer: a name (`glorot_uniform`, `he_normal`, ...) or a mapping with
`type:` and arguments (`{type: RandomNormal, stddev: 0.02}`)."""

Activation = Annotated[ActivationName, BeforeValidator(_snake)]

InputRef = str | list[str] | dict[str, str]
