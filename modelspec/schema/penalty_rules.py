"""Which layer weights a spec's regularizer and constraint fields apply to, and the checks
Keras would make at its first step (the field mixins and config classes are in
`regularizers.py`).

The naming rule (`targets`): the field `<prefix>_regularizer` / `<prefix>_constraint`
applies to the weights named `WEIGHTS_OF[prefix]` (default: `<prefix>`), matched against
the last part of each ParamInfo path; a spec class may override it for one prefix with
its `penalty_weights` class variable. Pure Python; the JAX side is
`modelspec.compiler.penalties`.
"""

from __future__ import annotations

from typing import Any

from modelspec.schema.regularizers import OrthogonalRegularizer, resolve
from modelspec.schema.tensors import LayerShape, ParamInfo, ShapeError

WEIGHTS_OF: dict[str, tuple[str, ...]] = {
    "recurrent": ("recurrent_kernel",),
    "depthwise": ("depthwise_kernel",),
    "pointwise": ("pointwise_kernel",),
}
"""Field prefix -> the Keras weight names it applies to, where they differ from the
prefix (`recurrent_regularizer` -> `recurrent_kernel`)."""


def targets(layer: Any, prefix: str) -> tuple[str, ...]:
    """Keras weight names that `<prefix>_regularizer` / `<prefix>_constraint` apply to."""
    own = getattr(type(layer), "penalty_weights", {})
    return own.get(prefix) or WEIGHTS_OF.get(prefix, (prefix,))


def weight_fields(layer: Any, suffix: str) -> list[tuple[str, Any]]:
    """(field name, resolved config) of the layer's set `<prefix>_<suffix>` fields
    (`suffix` "regularizer" or "constraint"), the activity regularizer excluded."""
    out = []
    for name in type(layer).model_fields:
        if name.endswith("_" + suffix) and name != "activity_regularizer":
            value = getattr(layer, name)
            if value is not None:
                out.append((name, resolve(value)))
    return out


def penalized(layer: Any, params: tuple[ParamInfo, ...], suffix: str):
    """(field, config, ParamInfo) for each trainable weight a set field applies to.

    Only trainable weights, as Keras: it regularizes `trainable_weights` and the optimizer
    constrains the variables it updates, so a `trainable: false` layer gets neither."""
    out = []
    for field, config in weight_fields(layer, suffix):
        names = targets(layer, field.rsplit("_", 1)[0])
        for p in params:
            trainable = p.trainable and layer.trainable and p.collection == "params"
            if trainable and p.path.split("/")[-1] in names:
                out.append((field, config, p))
    return out


def check_penalties(layer: Any, shape: LayerShape) -> None:
    """Refuse what Keras would refuse at its first step: an OrthogonalRegularizer on a
    tensor that is not rank 2, a constraint axis the weight does not have, an activity
    regularizer the layer type cannot apply as Keras does. Raises ShapeError."""
    for field, config, p in penalized(layer, shape.params, "regularizer"):
        _need_rank2(config, field, p.shape, f"its weight '{p.path}'")
    for field, config, p in penalized(layer, shape.params, "constraint"):
        axis = getattr(config, "axis", None)  # NonNeg has none
        for a in [] if axis is None else axis if isinstance(axis, list) else [axis]:
            if not -len(p.shape) <= a < len(p.shape):
                raise ShapeError(
                    f"axis {a} is out of range for the weight '{p.path}' of shape {tuple(p.shape)}",
                    field=field,
                    received=f"axis={config.axis}",
                )
    for nested in getattr(type(layer), "nested_fields", ()):
        _refuse_nested(getattr(layer, nested, None), nested)
    activity = layer.activity_penalty()
    if activity is None:
        return
    refusal = type(layer).activity_regularizer_refusal
    if refusal is not None and layer.activity_regularizer is not None:
        raise ShapeError(
            refusal,
            field="activity_regularizer",
            received=f"activity_regularizer={layer.activity_regularizer!r}",
            hint="Remove it, or put an ActivityRegularization layer after this one.",
        )
    for out in shape.outputs:
        _need_rank2(activity, "activity_regularizer", out.shape, f"the layer output {out}")


def _refuse_nested(inner: Any, where: str) -> None:
    """Regularizers and constraints of a layer nested in a wrapper (Bidirectional,
    TimeDistributed) are not applied yet: refused rather than silently ignored."""
    if inner is None:
        return
    fields = [
        n for n, _ in weight_fields(inner, "regularizer") + weight_fields(inner, "constraint")
    ]
    if inner.activity_regularizer is not None:
        fields.append("activity_regularizer")
    if fields:
        raise ShapeError(
            "regularizers and constraints of a nested layer are not supported yet",
            field=f"{where}.{fields[0]}",
            received=f"{fields[0]}={getattr(inner, fields[0])!r}",
            hint="Set them on a layer outside the wrapper, or remove them.",
        )


def _need_rank2(config: Any, field: str, shape: tuple, what: str) -> None:
    if isinstance(config, OrthogonalRegularizer) and len(shape) != 2:
        raise ShapeError(
            f"OrthogonalRegularizer needs a rank-2 tensor, but {what} has shape {tuple(shape)}",
            field=field,
            received=f"{field}={config.type}",
        )
