"""One registry idiom for every vocabulary (layers, losses, metrics, optimizers,
schedules, callbacks, data sources).

Why: a type used to be listed in several hand-kept tables (the union, a name map, a
JSON Schema enumeration, a table of per-type facts) that had to agree. Here a spec
class registers itself when it is defined, keyed by the single value of its
`type: Literal[...]` field, in the registry of its family root; the discriminated
union, the list of names and the schema enumeration are all derived from that
registry, and per-type facts live on the class as class variables.

    class LossSpec(Registered):
        registry: ClassVar[dict[str, type[LossSpec]]] = {}

    class MeanSquaredError(LossSpec):
        type: Literal["MeanSquaredError"]

Where every class of a family is named exactly like its Keras class (losses, metrics),
the family's class decorator declares that field from the class name (`tagged_by_name`),
so it is written once per family instead of once per class.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import Field, create_model

from modelspec.schema.base import SpecModel


class Registered(SpecModel):
    """Base of registered spec classes. A family root declares its own
    `registry: ClassVar[dict[str, type]] = {}`; every subclass with a one-value
    `type: Literal[...]` field lands in the nearest root's registry when defined."""

    registry: ClassVar[dict[str, type]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        tag = type_tag(cls)
        if tag is None:
            return
        registry = cls.registry
        if tag in registry and registry[tag].__qualname__ != cls.__qualname__:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: type '{tag}' is already registered by "
                f"{registry[tag].__module__}.{registry[tag].__qualname__}"
            )
        registry[tag] = cls


R = TypeVar("R", bound=Registered)


def tagged_by_name(cls: type[R], description: str, **fields: Any) -> type[R]:
    """`cls` with a `type: Literal["<its class name>"]` field described by `description`
    (plus `fields`, as `name=(annotation, Field(...))`), so it registers under its name.

    Why: most spec classes are named exactly like the Keras class they stand for, and each
    used to declare `type: Literal["<its own name>"]`, with the family's description, by
    hand. A family's class decorator (`metric_base.keras_metric`, `losses.keras_loss`)
    declares it here once. The result is a subclass with `cls`'s name, qualified name,
    module and docstring, so imports, error messages and the JSON Schema see no
    difference; `cls` itself has no tag and so is not registered."""
    return create_model(
        cls.__name__,
        __base__=cls,
        __module__=cls.__module__,
        __qualname__=cls.__qualname__,
        __doc__=cls.__doc__,
        type=(Literal[cls.__name__], Field(description=description)),
        **fields,
    )


def type_tag(cls: type) -> str | None:
    """The value of a class's `type: Literal["X"]` field (None for abstract bases)."""
    field = getattr(cls, "model_fields", {}).get("type")
    if field is None:
        return None
    annotation = field.annotation
    if get_origin(annotation) is Literal and len(get_args(annotation)) == 1:
        return get_args(annotation)[0]
    return None


def tagged_union(registry: dict[str, type]) -> Any:
    """`Annotated[A | B | ..., Field(discriminator="type")]` over a registry, in
    registration order (a single class is returned as the plain annotated class)."""
    classes = tuple(registry.values())
    if not classes:
        raise ValueError("an empty registry has no union")
    members = classes[0] if len(classes) == 1 else Union[classes]  # noqa: UP007
    return Annotated[members, Field(discriminator="type")]


def load_reference(ref: str) -> Any:
    """The object a `"package.module:name"` reference names, imported on first use.

    A spec class names its runtime implementation this way (a callback class, a data
    source reader, an update rule) so that the schema, which must not import JAX, still
    says in one place what runs for its type, and no runtime table keyed by type names
    has to be kept in step with the registry."""
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"not a 'module:name' reference: {ref!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["Registered", "load_reference", "tagged_by_name", "tagged_union", "type_tag"]
