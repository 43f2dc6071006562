"""Call kinds: how a layer is called, and how a spec's `inputs:` binds to that.

Keras layers are called three ways, and a spec class names its way in its `call` class
variable:

- `Single()`: one tensor, `layer(x)` (most layers);
- `Merge()`: a list of two or more tensors, `layer([a, b, ...])` (Add, Concatenate...);
  `Merge(inputs=2)` for exactly two;
- `Named(names, required)`: named tensors, `layer(query=q, value=v)`
  (MultiHeadAttention); a list binds positionally, a single name means "self"
  (the first two arguments both get it).

`bind` checks the form the spec wrote against the kind, so a wrong form is reported at
`inputs` with the form the layer expects; `invoke` calls any callable (the NNX layer or
its Keras twin) with the bound tensors. The graph's Node keeps `kind` ("single",
"multi", "named") and the bound `args`. Pure Python: no JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from modelspec.errors import did_you_mean, short_repr

Problem = tuple[str, str | None, str | None]
"""(message, received, hint) of a form that does not fit the call kind."""
Bound = tuple[str, tuple, Problem | None]
"""(kind, args, problem): args are (ref,), (ref, ...) or ((arg, ref), ...)."""


@dataclass(frozen=True)
class Call:
    """Base of the call kinds."""

    kind: ClassVar[str] = ""

    def bind(self, layer_type: str, given: Any) -> Bound:
        """Bind the spec's `inputs` (a name, a list or a mapping) to this call kind."""
        raise NotImplementedError

    def invoke(self, fn: Callable[..., Any], args: tuple, values: Mapping[str, Any], **kw: Any):
        """`fn` called with the tensors named by bound `args` (looked up in `values`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Single(Call):
    """One input tensor: `layer(x)`."""

    kind: ClassVar[str] = "single"

    def bind(self, layer_type: str, given: Any) -> Bound:
        if isinstance(given, str):
            return "single", (given,), None
        if isinstance(given, list) and len(given) == 1:
            return "single", (given[0],), None
        return (
            "single",
            (),
            (
                f"{layer_type} takes one input",
                short_repr(given),
                "Give one name, e.g. `inputs: previous_layer`.",
            ),
        )

    def invoke(self, fn, args, values, **kw):
        return fn(values[args[0]], **kw)


@dataclass(frozen=True)
class Merge(Call):
    """Two or more input tensors as a list: `layer([a, b, ...])`; `inputs` caps how
    many (`Merge(inputs=2)` for exactly two, as Keras's Subtract)."""

    inputs: int | None = None
    kind: ClassVar[str] = "multi"

    def bind(self, layer_type: str, given: Any) -> Bound:
        most = self.inputs
        if isinstance(given, list) and 2 <= len(given) <= (most or len(given)):
            return "multi", tuple(given), None
        if most == 2:
            message = f"{layer_type} takes exactly 2 inputs: give a list of two names"
        elif most:
            message = f"{layer_type} merges 2 to {most} inputs: give a list of names"
        else:
            message = f"{layer_type} merges two or more inputs: give a list of names"
        return "multi", (), (message, short_repr(given), "e.g. `inputs: [a, b]`.")

    def invoke(self, fn, args, values, **kw):
        return fn([values[r] for r in args], **kw)


@dataclass(frozen=True)
class Named(Call):
    """Named input tensors: `layer(query=q, value=v[, key=k])`.

    `names` are the call arguments in positional order; the first `required` must be
    given. A single name binds to the first two arguments (self-attention).
    `keras_list`: the Keras layer takes the tensors as one list in `names` order
    (`Attention([query, value, key])`) rather than as keywords; the NNX layer still gets
    keywords, so the spec is written the same way for every attention layer."""

    names: tuple[str, ...]
    required: int = 1
    keras_list: bool = False
    kind: ClassVar[str] = "named"

    def bind(self, layer_type: str, given: Any) -> Bound:
        t, names, required = layer_type, self.names, self.required
        if isinstance(given, str):
            given = dict.fromkeys(names[:2], given)
        if isinstance(given, list):
            if not required <= len(given) <= len(names):
                return (
                    "named",
                    (),
                    (
                        f"{t} takes {required} to {len(names)} inputs ({', '.join(names)})",
                        short_repr(given),
                        None,
                    ),
                )
            given = dict(zip(names, given, strict=False))
        unknown = [k for k in given if k not in names]
        if unknown:
            return (
                "named",
                (),
                (
                    f"{t} has no call argument '{unknown[0]}'",
                    short_repr(given),
                    did_you_mean(unknown[0], names) or "Call arguments: " + ", ".join(names) + ".",
                ),
            )
        missing = [n for n in names[:required] if n not in given]
        if missing:
            example = ", ".join(f"{n}: ..." for n in names[:required])
            return (
                "named",
                (),
                (
                    f"{t} needs the call argument '{missing[0]}'",
                    short_repr(given),
                    f"e.g. `inputs: {{{example}}}`.",
                ),
            )
        return "named", tuple((n, given[n]) for n in names if n in given), None

    def invoke(self, fn, args, values, **kw):
        if self.keras_list:
            return fn([values[r] for _, r in args], **kw)
        return fn(**{a: values[r] for a, r in args}, **kw)
