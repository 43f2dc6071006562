"""Names Keras has and modelspec does not (yet): said plainly, never "Did you mean".

A user porting a Keras example writes Keras's names. When one is missing here, the
nearest supported name is usually a different thing (`UpSampling1D` is not
`UpSampling2D`, `stateful` is not `state`), so the validation error paths ask this
module first and only fall back to typo suggestions for names Keras does not have.
The names themselves are data in `schema/keras_names.py`.
"""

from __future__ import annotations

from modelspec.schema.keras_names import (
    BASE_LAYER_ARGUMENTS,
    KERAS_CALLBACKS,
    KERAS_LAYER_ALIASES,
    KERAS_LAYERS,
    RENAMED_ARGUMENTS,
    UNSUPPORTED_ARGUMENTS,
)

_KERAS_TYPES = {"layer": frozenset(KERAS_LAYERS), "callback": frozenset(KERAS_CALLBACKS)}


def unsupported_type(kind: str, name: object) -> tuple[str, str | None] | None:
    """(message, hint) for a Keras `kind` name ("layer", "callback") that modelspec has
    no class for; None when Keras has no such name either (then it may be a typo)."""
    if not isinstance(name, str) or name not in _KERAS_TYPES.get(kind, ()):
        return None
    if kind == "layer" and name in KERAS_LAYER_ALIASES:
        canonical = KERAS_LAYER_ALIASES[name]
        return (
            f"'{name}' is Keras's alias of the layer '{canonical}'",
            f"modelspec names layers by their class: write `type: {canonical}`.",
        )
    return f"Keras {kind} '{name}' is not supported yet", None


def unsupported_argument(kind: str, owner: object, field: object) -> tuple[str, str] | None:
    """(message, hint) for an argument of Keras's `owner` class that its modelspec spec
    class does not take; None when Keras's class has no such argument (a typo)."""
    if not isinstance(owner, str) or not isinstance(field, str):
        return None
    if kind == "layer" and field in RENAMED_ARGUMENTS:
        new = RENAMED_ARGUMENTS[field]
        return (
            f"Keras's argument '{field}' of {owner} is called '{new}' in modelspec",
            f"Write `{new}: ...`.",
        )
    keras_args = UNSUPPORTED_ARGUMENTS.get(owner, ())
    if kind == "layer":
        keras_args += BASE_LAYER_ARGUMENTS
    if field not in keras_args:
        return None
    hint = (
        "Declare input shapes under `model.inputs`."
        if field in ("input_shape", "input_dim", "batch_input_shape", "batch_size")
        else "Remove it: modelspec has no equivalent yet."
    )
    return f"Keras's argument '{field}' of {owner} is not supported by modelspec yet", hint
