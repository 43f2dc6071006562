"""Pydantic validation errors -> positioned, human diagnostics.

Pydantic's `loc` mixes data keys with union-branch and discriminator labels; we walk it
against the data to keep only real keys, pick the most specific union branch, and
reword each error type the way Keras words argument errors ("Received: units=0").
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from modelspec.compiler.keras_support import unsupported_argument, unsupported_type
from modelspec.errors import Diagnostic, Locate, Path, choices_hint, did_you_mean, short_repr

"""locate(path, key=False) -> (file, line, col) of a value (or of its mapping key)."""

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "tuple": "a list",
}


def data_path(loc: tuple, data: Any) -> tuple[Path, list[str]]:
    """Split a pydantic loc into the real data path and the skipped labels."""
    path: list[str | int] = []
    skipped: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_label(part, node):
            path.append(part)  # a missing or extra key
            node = None
        else:
            skipped.append(str(part))
    return tuple(path), skipped


_TAGS = {"constant", "schedule"}
"""Tags of callable-discriminated unions (schema.schedules.LearningRate): labels in a
pydantic loc, never data keys (a data key of that name is found in the node first)."""


def _is_label(part: str, node: dict) -> bool:
    return (
        part == node.get("type")
        or "[" in part
        or part in {"str", "int", "float", "bool", "list", "dict", "none"}
        or part in _TAGS
        or (part[:1].isupper() and part not in node)
    )


def _value_at(data: Any, path: Path) -> Any:
    node = data
    for p in path:
        node = node[p] if isinstance(node, dict | list) else None
    return node


def field_at(root: type[BaseModel], data: Any, path: Path):
    """The pydantic FieldInfo of the field at `path` (best effort; None if unknown)."""
    if not path or not isinstance(path[-1], str):
        return None
    model = _model_at(root, data, path[:-1])
    return model.model_fields.get(path[-1]) if model is not None else None


def model_fields_at(root: type[BaseModel], data: Any, path: Path) -> list[str] | None:
    """Field names of the pydantic model that validates `data` at `path` (best effort)."""
    model = _model_at(root, data, path)
    return list(model.model_fields) if model else None


def _model_at(root: type[BaseModel], data: Any, path: Path) -> type[BaseModel] | None:
    current: Any = root
    node = data
    for part in path:
        model = _pick_model(current, node)
        if model is not None:
            field = model.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        else:
            current = _container_item(current)
            if current is None:
                return None
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
    return _pick_model(current, node)


def _has(node: Any, part: Any) -> bool:
    return (
        (part in node) if isinstance(node, dict) else (isinstance(part, int) and part < len(node))
    )


def _args(tp: Any) -> tuple:
    if typing.get_origin(tp) is typing.Annotated:
        return _args(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        out: tuple = ()
        for a in typing.get_args(tp):
            out += _args(a)
        return out
    return (tp,)


def _pick_model(tp: Any, node: Any) -> type[BaseModel] | None:
    models = [a for a in _args(tp) if isinstance(a, type) and issubclass(a, BaseModel)]
    if not models:
        return None
    if len(models) == 1:
        return models[0]
    tag = node.get("type") if isinstance(node, dict) else None
    for m in models:
        field = m.model_fields.get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return m
    return None


def _container_item(tp: Any) -> Any:
    for a in _args(tp):
        origin = typing.get_origin(a)
        if origin in (list, tuple):
            return typing.get_args(a)[0]
        if origin is dict:
            return typing.get_args(a)[1]
    return None


def diagnostics(
    exc: ValidationError,
    data: Any,
    root: type[BaseModel],
    locate: Locate,
    type_choices: list[str] | None = None,
) -> list[Diagnostic]:
    """All errors of one validation, reworded and positioned."""
    groups: dict[Path, dict[str, list[tuple[Path, dict]]]] = {}
    order: list[Path] = []
    for err in exc.errors(include_url=False):
        path, skipped = data_path(err["loc"], data)
        branch_key = path[: _branch_depth(err["loc"], data)]
        branch = "|".join(skipped)
        if branch_key not in groups:
            groups[branch_key] = {}
            order.append(branch_key)
        groups[branch_key].setdefault(branch, []).append((path, err))
    out: list[Diagnostic] = []
    for key in order:
        branches = groups[key]
        best = max(branches.values(), key=lambda errs: max(len(p) for p, _ in errs))
        for path, err in best:
            out.append(_one(err, path, data, root, locate, type_choices))
    return _dedupe(out)


def _branch_depth(loc: tuple, data: Any) -> int:
    """Depth of the data path at which the first union label appears."""
    node, depth = data, 0
    for part in loc:
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
        ):
            node = node[part] if _has(node, part) else None
            depth += 1
        else:
            return depth
    return depth


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.file, d.line, d.col, d.path, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _kind(path: Path) -> str:
    if len(path) >= 2 and path[:2] == ("model", "layers"):
        return "layer"
    return {
        "optimizer": "optimizer",
        "loss": "loss",
        "metrics": "metric",
        "data": "data source",
        "callbacks": "callback",
    }.get(
        next(
            (
                p
                for p in reversed(path)
                if isinstance(p, str) and p in {"optimizer", "loss", "metrics", "data", "callbacks"}
            ),
            "",
        ),
        "",
    )


def _owner(data: Any, path: Path) -> str:
    parent = _value_at(data, path[:-1])
    if isinstance(parent, dict) and isinstance(parent.get("type"), str):
        return f" for {parent['type']}"
    return ""


def _range_hint(info, field) -> str | None:
    """'Valid range: 0 <= rate < 1.' (or 'Valid values: units > 0.') from the field's
    constraints."""
    if info is None or field is None:
        return None
    low = high = None
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">=")):
            if getattr(m, attr, None) is not None:
                low = (sym, getattr(m, attr))
        for attr, sym in (("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                high = (sym, getattr(m, attr))
    if low and high:
        flipped = {">": "<", ">=": "<="}[low[0]]
        return f"Valid range: {low[1]} {flipped} {field} {high[0]} {high[1]}."
    bound = low or high
    return f"Valid values: {field} {bound[0]} {bound[1]}." if bound else None


def _type_hint(etype: str, value: Any) -> str | None:
    kind = etype.split("_")[0]
    if kind in ("int", "float"):
        whole = " whole" if kind == "int" else ""
        return f"Write a{whole} number (YAML numbers take no quotes)."
    if kind == "bool":
        return "Write true or false."
    if kind in ("list", "tuple"):
        return "Write a list, e.g. [3, 3]."
    return None


def _one(err: dict, path: Path, data: Any, root, locate: Locate, type_choices) -> Diagnostic:
    etype, ctx = err["type"], err.get("ctx") or {}
    field = path[-1] if path and isinstance(path[-1], str) else None
    value = err.get("input")
    received = (
        None
        if value is None and etype == "missing"
        else (f"{field}={short_repr(value)}" if field else short_repr(value))
    )
    hint: str | None = None
    at_key = False
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("tag")
        choices = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        choices = [c for c in choices if c]
        if _kind(path) == "layer" and type_choices:
            choices = type_choices
        kind = _kind(path) or "section"
        if etype == "union_tag_not_found":
            msg, received = f"missing `type` (which {kind} this is)", None
        else:
            msg, received = f"unknown {kind} type '{tag}'", f"type={short_repr(tag)}"
            path = (*path, "type")
        hint = choices_hint(tag, choices)
        known = unsupported_type(kind, tag) if etype == "union_tag_invalid" else None
        if known is not None:  # Keras has it: not a typo, so no near-miss suggestion
            msg, hint = known
    elif etype == "extra_forbidden":
        names = model_fields_at(root, data, path[:-1]) or []
        names = [n for n in names if n != "type"]
        msg = f"unknown argument '{field}'{_owner(data, path)}"
        hint = did_you_mean(str(field), names) or (
            "Valid arguments: " + ", ".join(names) + "." if names else None
        )
        at_key = True
        owner = _value_at(data, path[:-1])
        known = unsupported_argument(
            _kind(path[:-1]), owner.get("type") if isinstance(owner, dict) else None, field
        )
        if known is not None:  # Keras's own argument: say so, suggest no other field
            msg, hint = known
        if len(path) == 1:  # a top-level key: say what is wrong, never echo its value
            msg, received = f"unknown section '{short_repr(field, 40)[1:-1]}'", None
            hint = did_you_mean(str(field), names) or (
                "Spec sections: " + ", ".join(names) + "." if names else None
            )
    elif etype == "missing":
        msg = f"missing required argument '{field}'{_owner(data, path)}"
        hint = f"Add `{field}: ...`."
        received = None
        return Diagnostic.at(locate(path[:-1], False), path, msg, received, hint)
    elif etype == "literal_error":
        expected = [
            e.strip().strip("'")
            for e in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
        ]
        word = (
            "activation"
            if field and "activation" in str(field)
            else ("initializer" if field and "initializer" in str(field) else None)
        )
        msg = (
            f"unknown {word} '{value}'"
            if word
            else "must be one of "
            + ", ".join(f"'{e}'" for e in expected[:8])
            + ("..." if len(expected) > 8 else "")
        )
        hint = choices_hint(value, expected)
    elif etype.endswith("_type") or etype.endswith("_parsing") or etype in ("int_from_float",):
        word = _TYPE_WORDS.get(etype.split("_")[0], None)
        msg = f"must be {word}" if word else err["msg"]
        if etype == "model_type" or etype == "dict_type":
            msg = "must be a mapping"
        hint = _type_hint(etype, value)
    elif etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sym = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[etype]
        bound = next(iter(ctx.values()), "?")
        msg = f"must be {sym} {bound}"
        hint = _range_hint(field_at(root, data, path), field)
    elif etype in ("too_short", "too_long"):
        msg = err["msg"].replace("List", "list").replace("Dictionary", "mapping")
    elif etype in ("value_error", "assertion_error"):
        msg = str(ctx.get("error", err["msg"]))
        if " Did you mean" in msg:
            msg, hint = msg.split(" Did you mean", 1)
            hint = "Did you mean" + hint
        elif ". Valid " in msg:
            msg, hint = msg.split(". Valid ", 1)
            hint = "Valid " + hint
    elif etype == "finite_number":
        msg = "must be a finite number"
        hint = "Infinity and NaN are not allowed here."
    elif etype == "string_pattern_mismatch":
        msg = "must contain only letters, digits, '_', '.', '-' (and start with a letter or '_')"
    else:
        msg = err["msg"]
    return Diagnostic.at(locate(path, at_key), path, msg, received, hint)
