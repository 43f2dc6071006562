"""Weight regularizers, activity regularizers and weight constraints (Keras 3's).

A spec writes them like initializers: a name (`kernel_regularizer: l2`) or a mapping with
`type:` and arguments (`{type: L2, l2: 0.001}`, `{type: MaxNorm, max_value: 3}`). Names are
exactly those `keras.regularizers.get` / `keras.constraints.get` accept (the class name or
its snake_case, e.g. `L1L2` / `l1l2`), with the class's defaults.

Which layer weights a field applies to is one naming rule (`targets` in
`penalty_rules.py`, with the checks Keras makes): the field `<prefix>_regularizer` /
`<prefix>_constraint` applies to the weights named `WEIGHTS_OF[prefix]` (default:
`<prefix>`), matched against the last part of each ParamInfo path, so `kernel_regularizer` on MultiHeadAttention reaches `query/kernel` and
the other projections, as Keras passes it to each sublayer. A spec class may override
the rule for one prefix with its `penalty_weights` class variable (DepthwiseConv's
`depthwise_regularizer` applies to its weight `kernel`). The mixins below declare the
fields with Keras's names, so a layer type gets them by listing a mixin among its bases.

Pure Python, like all of `modelspec.schema`; the JAX side is
`modelspec.compiler.penalties`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, model_validator

from modelspec.errors import choices_hint
from modelspec.schema.base import SpecModel
from modelspec.schema.vocabulary import Registered, tagged_union

NonNegative = Annotated[float, Field(ge=0)]
Axis = int | list[int]


class RegularizerSpec(Registered):
    """Base of the regularizers; each class registers under its Keras class name."""

    registry: ClassVar[dict[str, type[RegularizerSpec]]] = {}
    type: str
    """Keras class name of the regularizer."""


class L1(RegularizerSpec):
    """`l1 * sum(abs(x))` (Keras `L1`)."""

    type: Literal["L1"]
    l1: NonNegative = 0.01
    """L1 factor."""


class L2(RegularizerSpec):
    """`l2 * sum(square(x))` (Keras `L2`; no factor 1/2)."""

    type: Literal["L2"]
    l2: NonNegative = 0.01
    """L2 factor."""


class L1L2(RegularizerSpec):
    """`l1 * sum(abs(x)) + l2 * sum(square(x))` (Keras `L1L2`; both factors default to 0,
    so the bare name `l1l2` adds no penalty, as in Keras)."""

    type: Literal["L1L2"]
    l1: NonNegative = 0.0
    """L1 factor."""
    l2: NonNegative = 0.0
    """L2 factor."""


class OrthogonalRegularizer(RegularizerSpec):
    """`factor * 0.5 * mean |cos|` over pairs of distinct L2-normalized rows (or columns)
    of a rank-2 tensor (Keras `OrthogonalRegularizer`)."""

    type: Literal["OrthogonalRegularizer"]
    factor: NonNegative = 0.01
    """Regularization factor."""
    mode: Literal["rows", "columns"] = "rows"
    """Make the rows (`rows`) or the columns (`columns`) orthogonal to each other."""


class ConstraintSpec(Registered):
    """Base of the weight constraints, applied to a weight after each optimizer update."""

    registry: ClassVar[dict[str, type[ConstraintSpec]]] = {}
    type: str
    """Keras class name of the constraint."""


class MaxNorm(ConstraintSpec):
    """Rescales weights so the L2 norm along `axis` is at most `max_value` (Keras
    `MaxNorm`)."""

    type: Literal["MaxNorm"]
    max_value: NonNegative = 2.0
    """Largest allowed norm."""
    axis: Axis = 0
    """Axis (or axes) the norm is taken over: 0 for a Dense kernel (one norm per unit),
    [0, 1, 2] for a Conv2D kernel (one norm per filter)."""


class MinMaxNorm(ConstraintSpec):
    """Rescales weights so the L2 norm along `axis` moves into [min_value, max_value] at
    `rate` (Keras `MinMaxNorm`)."""

    type: Literal["MinMaxNorm"]
    min_value: NonNegative = 0.0
    """Smallest allowed norm."""
    max_value: NonNegative = 1.0
    """Largest allowed norm."""
    rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    """1 enforces the bounds at once; below 1 the norm moves that fraction of the way."""
    axis: Axis = 0
    """Axis (or axes) the norm is taken over (as MaxNorm)."""

    @model_validator(mode="after")
    def _ordered(self) -> MinMaxNorm:
        if self.min_value > self.max_value:
            raise ValueError(
                f"min_value must not exceed max_value. Received: min_value={self.min_value}, "
                f"max_value={self.max_value}"
            )
        return self


class NonNeg(ConstraintSpec):
    """Sets negative weights to zero (Keras `NonNeg`)."""

    type: Literal["NonNeg"]


class UnitNorm(ConstraintSpec):
    """Rescales weights to unit L2 norm along `axis` (Keras `UnitNorm`)."""

    type: Literal["UnitNorm"]
    axis: Axis = 0
    """Axis (or axes) the norm is taken over (as MaxNorm)."""


def _snake(name: str) -> str:
    """Keras's `to_snake_case` for these class names: L1L2 -> l1l2, MaxNorm -> max_norm."""
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.replace("l1_l2", "l1l2")


def _names(registry: dict[str, type]) -> dict[str, str]:
    """Every string Keras's `get` accepts -> the class name."""
    return {alias: cls for cls in registry for alias in (cls, _snake(cls))}


REGULARIZER_NAMES = _names(RegularizerSpec.registry)
CONSTRAINT_NAMES = _names(ConstraintSpec.registry)


def _checked(kind: str, names: dict[str, str]):
    """A before-validator: a known name passes; an unknown name or mapping `type` is
    refused with the accepted ones (and a 'Did you mean'); a snake_case `type` in a mapping
    becomes the class name, as Keras's deserializer accepts both."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            if value not in names:
                raise ValueError(_unknown(f"{kind} '{value}'", choices_hint(value, list(names))))
            return value
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            tag = value["type"]
            if tag not in names:
                hint = choices_hint(tag, sorted(set(names.values())))
                raise ValueError(_unknown(f"{kind} type '{tag}'", hint))
            return {**value, "type": names[tag]}
        return value

    return check


def _unknown(what: str, hint: str) -> str:
    """'unknown x. Valid values: ...' or 'unknown x Did you mean ...?' (the positioned
    error splits the hint off at either)."""
    return f"unknown {what}{' ' if hint.startswith('Did') else '. '}{hint}"


def _form(value: Any) -> str:
    """Which branch validates a value: a mapping is a config, anything else a name (so a
    bad mapping is reported by its config class alone, not also as a bad name). When a
    spec is dumped the value is the validated config model, which is a config too."""
    return "Config" if isinstance(value, dict | BaseModel) else "Name"


RegularizerName = Literal[tuple(REGULARIZER_NAMES)]  # type: ignore[valid-type]
ConstraintName = Literal[tuple(CONSTRAINT_NAMES)]  # type: ignore[valid-type]
Regularizer = Annotated[
    Annotated[RegularizerName, Tag("Name")]
    | Annotated[tagged_union(RegularizerSpec.registry), Tag("Config")],
    Discriminator(_form),
    BeforeValidator(_checked("regularizer", REGULARIZER_NAMES)),
]
"""A Keras regularizer: a name (`l1`, `l2`, `l1l2`, `orthogonal_regularizer`, or the class
name) with Keras's defaults, or a mapping (`{type: L2, l2: 0.001}`)."""
Constraint = Annotated[
    Annotated[ConstraintName, Tag("Name")]
    | Annotated[tagged_union(ConstraintSpec.registry), Tag("Config")],
    Discriminator(_form),
    BeforeValidator(_checked("constraint", CONSTRAINT_NAMES)),
]
"""A Keras weight constraint: a name (`max_norm`, `min_max_norm`, `non_neg`, `unit_norm`,
or the class name) with Keras's defaults, or a mapping (`{type: MaxNorm, max_value: 3}`)."""


def resolve(value: Any) -> Any:
    """A regularizer or constraint as its config object: a name gets Keras's defaults; a
    plain mapping (`{type: L2, l2: 0.1}`) is validated; a config passes through."""
    if isinstance(value, str):
        name = REGULARIZER_NAMES.get(value) or CONSTRAINT_NAMES[value]
        return {**RegularizerSpec.registry, **ConstraintSpec.registry}[name](type=name)
    if isinstance(value, dict):
        names = {**REGULARIZER_NAMES, **CONSTRAINT_NAMES}
        name = names[value["type"]]
        cls = {**RegularizerSpec.registry, **ConstraintSpec.registry}[name]
        return cls.model_validate({**value, "type": name})
    return value


# -- the fields, per group of Keras weights --------------------------------------------


class KernelPenalties(SpecModel):
    """`kernel_*` and `bias_*` regularizers and constraints (Dense, Conv, attention...)."""

    kernel_regularizer: Regularizer | None = None
    """Penalty on the kernel(s), added to the training loss."""
    bias_regularizer: Regularizer | None = None
    """Penalty on the bias(es), added to the training loss."""
    kernel_constraint: Constraint | None = None
    """Projection applied to the kernel(s) after each optimizer update."""
    bias_constraint: Constraint | None = None
    """Projection applied to the bias(es) after each optimizer update."""


class BiasPenalties(SpecModel):
    """`bias_*` regularizer and constraint, for layers whose kernels have other names
    (depthwise and separable convolutions)."""

    bias_regularizer: Regularizer | None = None
    """Penalty on the bias, added to the training loss."""
    bias_constraint: Constraint | None = None
    """Projection applied to the bias after each optimizer update."""


class RecurrentPenalties(SpecModel):
    """`recurrent_*` regularizer and constraint (recurrent layers' `recurrent_kernel`)."""

    recurrent_regularizer: Regularizer | None = None
    """Penalty on the recurrent kernel, added to the training loss."""
    recurrent_constraint: Constraint | None = None
    """Projection applied to the recurrent kernel after each optimizer update."""


class EmbeddingsPenalties(SpecModel):
    """`embeddings_*` regularizer and constraint (Embedding)."""

    embeddings_regularizer: Regularizer | None = None
    """Penalty on the embedding matrix, added to the training loss."""
    embeddings_constraint: Constraint | None = None
    """Projection applied to the embedding matrix after each optimizer update."""


class GammaBetaPenalties(SpecModel):
    """`beta_*` and `gamma_*` regularizers and constraints (normalization layers)."""

    beta_regularizer: Regularizer | None = None
    """Penalty on beta (the offset), added to the training loss."""
    gamma_regularizer: Regularizer | None = None
    """Penalty on gamma (the scale), added to the training loss."""
    beta_constraint: Constraint | None = None
    """Projection applied to beta after each optimizer update."""
    gamma_constraint: Constraint | None = None
    """Projection applied to gamma after each optimizer update."""


class DepthwisePenalties(SpecModel):
    """`depthwise_*` regularizer and constraint (depthwise and separable convolutions)."""

    depthwise_regularizer: Regularizer | None = None
    """Penalty on the depthwise kernel, added to the training loss."""
    depthwise_constraint: Constraint | None = None
    """Projection applied to the depthwise kernel after each optimizer update."""


class PointwisePenalties(SpecModel):
    """`pointwise_*` regularizer and constraint (separable convolutions)."""

    pointwise_regularizer: Regularizer | None = None
    """Penalty on the pointwise kernel, added to the training loss."""
    pointwise_constraint: Constraint | None = None
    """Projection applied to the pointwise kernel after each optimizer update."""


class AlphaPenalties(SpecModel):
    """`alpha_*` regularizer and constraint (PReLU)."""

    alpha_regularizer: Regularizer | None = None
    """Penalty on alpha, added to the training loss."""
    alpha_constraint: Constraint | None = None
    """Projection applied to alpha after each optimizer update."""


__all__ = [
    "AlphaPenalties",
    "BiasPenalties",
    "Constraint",
    "ConstraintSpec",
    "DepthwisePenalties",
    "EmbeddingsPenalties",
    "GammaBetaPenalties",
    "KernelPenalties",
    "PointwisePenalties",
    "RecurrentPenalties",
    "Regularizer",
    "RegularizerSpec",
    "resolve",
]
