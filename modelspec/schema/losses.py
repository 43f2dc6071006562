"""Loss specs: Keras 3 loss names, arguments and defaults, written as YAML.

A spec's `loss:` is either a plain string, exactly as `model.compile(loss=...)` takes it
(the class name `SparseCategoricalCrossentropy` or Keras's function alias
`sparse_categorical_crossentropy`, `mse`, `kld`, ...), or a mapping
`{type: SparseCategoricalCrossentropy, from_logits: true}` when arguments are needed.
Strings are turned into the mapping form before validation, so the rest of the system
only ever sees the models below. Defaults are those of `inspect.signature(keras.losses.X)`
in Keras 3. The numerics live in `modelspec.runtime.objective.losses`; this module never imports JAX.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BeforeValidator, Field

from modelspec.errors import choices_hint
from modelspec.schema.base import PositiveFloat
from modelspec.schema.vocabulary import Registered, tagged_by_name, tagged_union

Reduction = Literal["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"]
"""Keras loss reductions that give a scalar. `sum_over_batch_size` (= `mean`) divides the
weighted sum by the number of per-sample loss values; `mean_with_sample_weight` divides
it by the sum of the sample weights (the mean over unpadded tokens when the weights are a
padding mask). Keras's `none` is left out: training needs a scalar."""

LabelKind = Literal["sparse", "categorical", "binary", "other"]
"""What a loss expects its targets to hold: integer class ids (`sparse`), one-hot or soft
class rows (`categorical`), values in [0, 1] (`binary`), or any numbers (`other`)."""


class LossSpec(Registered):
    """Base of every loss spec. Each loss class registers itself under its `type` and
    carries its own Keras facts as class variables, so the union, the string aliases, the
    logged names and the data checks all read them from one place."""

    registry: ClassVar[dict[str, type[LossSpec]]] = {}
    keras_name: ClassVar[str]
    """Default `name` of the Keras loss object (e.g. `sparse_categorical_crossentropy`)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other strings `keras.losses.get` resolves to this loss (case-sensitive, as Keras)."""
    label_kind: ClassVar[LabelKind] = "other"
    """What the targets must hold; the data checks test labels against it before step 1."""

    type: str
    """Keras class name of the loss."""
    reduction: Reduction = "sum_over_batch_size"
    """How per-sample losses become the minimized scalar (Keras `reduction`)."""


L = TypeVar("L", bound=LossSpec)


def keras_loss(cls: type[L]) -> type[L]:
    """Class decorator for a loss named like its Keras class: gives it `type:
    Literal["<class name>"]`, declared and documented here once instead of in every loss
    class."""
    return tagged_by_name(cls, "Keras class name of the loss.")


@keras_loss
class SparseCategoricalCrossentropy(LossSpec):
    """Cross-entropy between integer class labels and class probabilities or logits."""

    keras_name = "sparse_categorical_crossentropy"
    aliases = ("sparse_categorical_crossentropy",)
    label_kind = "sparse"

    from_logits: bool = False
    """True when `y_pred` holds logits; False when it holds probabilities (softmax output)."""
    ignore_class: int | None = None
    """Label whose positions are left out of the loss (e.g. a padding id), or null."""
    axis: int = -1
    """The class axis of `y_pred`."""


@keras_loss
class CategoricalCrossentropy(LossSpec):
    """Cross-entropy between one-hot (or soft) labels and class probabilities or logits."""

    keras_name = "categorical_crossentropy"
    aliases = ("categorical_crossentropy",)
    label_kind = "categorical"

    from_logits: bool = False
    """True when `y_pred` holds logits; False when it holds probabilities (softmax output)."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / num_classes`."""
    axis: int = -1
    """The class axis."""


@keras_loss
class BinaryCrossentropy(LossSpec):
    """Cross-entropy of independent 0/1 labels (binary or multi-label classification)."""

    keras_name = "binary_crossentropy"
    aliases = ("binary_crossentropy", "bce", "BCE")
    label_kind = "binary"

    from_logits: bool = False
    """True when `y_pred` holds logits; False when it holds probabilities (sigmoid output)."""
    label_smoothing: float = Field(0.0, ge=0, le=1)
    """Labels become `y * (1 - s) + s / 2`."""
    axis: int = -1
    """Axis the per-element losses are averaged over."""


@keras_loss
class MeanSquaredError(LossSpec):
    """Mean of squared errors over the last axis."""

    keras_name = "mean_squared_error"
    aliases = ("mean_squared_error", "mse", "MSE")


@keras_loss
class MeanAbsoluteError(LossSpec):
    """Mean of absolute errors over the last axis."""

    keras_name = "mean_absolute_error"
    aliases = ("mean_absolute_error", "mae", "MAE")


@keras_loss
class Huber(LossSpec):
    """Quadratic for errors up to `delta`, linear beyond (robust regression)."""

    keras_name = "huber_loss"
    aliases = ("huber",)

    delta: PositiveFloat = 1.0
    """The error size where the loss turns from quadratic to linear."""


@keras_loss
class LogCosh(LossSpec):
    """Mean of log(cosh(error)) over the last axis: like MSE for small errors, MAE for big."""

    keras_name = "log_cosh"
    aliases = ("log_cosh",)


@keras_loss
class KLDivergence(LossSpec):
    """Kullback-Leibler divergence of `y_pred` from `y_true` (both distributions)."""

    keras_name = "kl_divergence"
    aliases = ("kl_divergence", "kld", "KLD")


@keras_loss
class CosineSimilarity(LossSpec):
    """Negative cosine similarity (-1 = same direction), so minimizing aligns vectors."""

    keras_name = "cosine_similarity"
    aliases = ("cosine_similarity",)

    axis: int = -1
    """Axis along which the similarity is computed."""


@keras_loss
class Hinge(LossSpec):
    """Mean of max(1 - y_true * y_pred, 0); 0/1 labels are mapped to -1/1 first."""

    keras_name = "hinge"
    aliases = ("hinge",)


LOSS_TYPES: dict[str, type[LossSpec]] = LossSpec.registry
"""Supported loss classes by their Keras class name (the registry itself)."""

LOSS_ALIASES: dict[str, str] = {
    **{name: name for name in LOSS_TYPES},
    **{alias: name for name, cls in LOSS_TYPES.items() for alias in cls.aliases},
}
"""Every string `keras.losses.get` resolves to one of LOSS_TYPES (case-sensitive, as in
Keras), mapped to the class name: the class names, then each class's `aliases`."""


def _coerce_loss(value: Any) -> Any:
    """String form -> mapping form; an alias in a mapping's `type` -> the class name."""
    if isinstance(value, str):
        return {"type": _canonical(value)}
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return {**value, "type": _canonical(value["type"])}
    return value


def _canonical(name: str) -> str:
    if name in LOSS_ALIASES:
        return LOSS_ALIASES[name]
    raise ValueError(f"Unknown loss {name!r}. {choices_hint(name, list(LOSS_ALIASES))}")


LossName = Literal[tuple(LOSS_ALIASES)]  # type: ignore[valid-type]
"""The string form (JSON Schema enum for editors)."""

AnyLossSpec = tagged_union(LossSpec.registry)
"""The mapping form only (what a validated spec holds)."""

Loss = Annotated[
    AnyLossSpec,
    BeforeValidator(_coerce_loss, json_schema_input_type=LossName | AnyLossSpec),
]
"""A loss as written in a spec: a Keras loss name string or a `{type: ..., ...}` mapping.
Validates to one of the models above."""
