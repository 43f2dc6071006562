"""How each layer type is called: one tensor, a list of tensors, or named arguments.

The spec's `inputs:` (a name, a list, or a mapping) is bound against this, so a wrong
form is reported at `inputs` with the form the layer expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelspec.errors import did_you_mean, short_repr

MERGE_TYPES = frozenset({"Add", "Multiply", "Concatenate"})
NAMED_ARGS = {"MultiHeadAttention": (("query", "value", "key"), 2)}
"""type -> (argument names in positional order, how many are required)."""


@dataclass(frozen=True)
class Signature:
    layer_type: str
    kind: str  # "single" | "multi" | "named"
    names: tuple[str, ...] = ()
    required: int = 1

    def bind(self, given) -> tuple[str, tuple, tuple[str, str | None, str | None] | None]:
        """-> (kind, args, problem) where problem = (message, received, hint)."""
        t = self.layer_type
        if self.kind == "single":
            if isinstance(given, str):
                return "single", (given,), None
            if isinstance(given, list) and len(given) == 1:
                return "single", (given[0],), None
            return (
                "single",
                (),
                (
                    f"{t} takes one input",
                    short_repr(given),
                    "Give one name, e.g. `inputs: previous_layer`.",
                ),
            )
        if self.kind == "multi":
            if isinstance(given, list) and len(given) >= 2:
                return "multi", tuple(given), None
            return (
                "multi",
                (),
                (
                    f"{t} merges two or more inputs: give a list of names",
                    short_repr(given),
                    "e.g. `inputs: [a, b]`.",
                ),
            )
        # named
        if isinstance(given, str):
            given = {"query": given, "value": given}
        if isinstance(given, list):
            if not self.required <= len(given) <= len(self.names):
                return (
                    "named",
                    (),
                    (
                        f"{t} takes {self.required} to {len(self.names)} inputs "
                        f"({', '.join(self.names)})",
                        short_repr(given),
                        None,
                    ),
                )
            given = dict(zip(self.names, given, strict=False))
        unknown = [k for k in given if k not in self.names]
        if unknown:
            return (
                "named",
                (),
                (
                    f"{t} has no call argument '{unknown[0]}'",
                    short_repr(given),
                    did_you_mean(unknown[0], self.names)
                    or "Call arguments: " + ", ".join(self.names) + ".",
                ),
            )
        missing = [n for n in self.names[: self.required] if n not in given]
        if missing:
            return (
                "named",
                (),
                (
                    f"{t} needs the call argument '{missing[0]}'",
                    short_repr(given),
                    f"e.g. `inputs: {{{', '.join(f'{n}: ...' for n in self.names[: self.required])}}}`.",
                ),
            )
        return "named", tuple((n, given[n]) for n in self.names if n in given), None


def signature_of(layer_type: str) -> Signature:
    if layer_type in MERGE_TYPES:
        return Signature(layer_type, "multi")
    if layer_type in NAMED_ARGS:
        names, required = NAMED_ARGS[layer_type]
        return Signature(layer_type, "named", names, required)
    return Signature(layer_type, "single")
