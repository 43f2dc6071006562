"""Expansion of reusable blocks into plain layers, and Keras-style auto-naming.

Runs on plain data before schema validation: a use `{type: residual, name: s1,
filters: 64, repeat: 3}` becomes the block's layers, named `s1/0/conv`, `s1/1/conv`...,
with `${param}` substituted and references rewired. Every expanded field remembers where
its value was written (`origin`), so validation errors point at the block definition or
at the argument of the use site, never at generated text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelspec.compiler.block_limits import MAX_DEPTH, MAX_LAYERS, layer_count, size_errors
from modelspec.errors import Path, did_you_mean, format_path, short_repr
from modelspec.schema.layers import LAYER_TYPES

_WHOLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_EMBEDDED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CALL_KEYS = ("type", "name", "inputs", "repeat", "trainable", "scan", "remat")
_STACK_KEYS = ("scan", "remat")


def snake(type_name: str) -> str:
    """Keras auto-name stem (`keras.src.utils.naming.to_snake_case`): `Conv2D` -> `conv2d`,
    `MultiHeadAttention` -> `multi_head_attention`, `Conv2DTranspose` -> `conv2d_transpose`,
    `PReLU` -> `p_re_lu`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class Expansion:
    layers: list[Any]
    origin: dict[Path, Path] = field(default_factory=dict)
    errors: list[tuple[Path, str, dict[str, Any]]] = field(default_factory=list)
    too_large: bool = False
    """Expansion was refused (MAX_LAYERS): nothing was expanded."""
    stacks: list[tuple[dict[str, Any], Path]] = field(default_factory=list)
    """`model.stacks` entries of the repeated uses, with where each use was written."""


class _Namer:
    """Keras naming: first `dense`, then `dense_1`, ..., skipping names already taken."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)
        self.counts: dict[str, int] = {}

    def new(self, stem: str) -> str:
        n = self.counts.get(stem, 0)
        while True:
            name = stem if n == 0 else f"{stem}_{n}"
            n += 1
            if name not in self.taken:
                self.counts[stem] = n
                self.taken.add(name)
                return name


def expand(data: dict[str, Any]) -> Expansion:
    """Expand blocks in `data['model']['layers']` (in place) and name every layer."""
    model = data.get("model")
    blocks = data.get("blocks") if isinstance(data.get("blocks"), dict) else {}
    if not isinstance(model, dict) or not isinstance(model.get("layers"), list):
        return Expansion(layers=[])
    items = model["layers"]
    explicit = {
        it["name"] for it in items if isinstance(it, dict) and isinstance(it.get("name"), str)
    }
    if isinstance(model.get("inputs"), dict):
        explicit |= set(model["inputs"])
    ex = Expansion(layers=[])
    ex.errors = size_errors(items, blocks)
    if ex.errors:
        ex.too_large = True
        return ex
    namer = _Namer(explicit)
    aliases: dict[str, str] = {}
    after_block: str | None = None
    for i, item in enumerate(items):
        src = ("model", "layers", i)
        if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"] in blocks:
            name = (
                item.get("name")
                if isinstance(item.get("name"), str)
                else namer.new(snake(item["type"]))
            )
            prev = _last_output(ex, after_block)
            if prev is None and isinstance(model.get("inputs"), dict) and len(model["inputs"]) == 1:
                prev = next(iter(model["inputs"]))  # first layer: the model's only input
            out = _expand_call(ex, blocks, item, src, name, prev, depth=0, stack=())
            aliases[name] = out
            after_block = out
            continue
        item = dict(item) if isinstance(item, dict) else item
        if isinstance(item, dict):
            if not isinstance(item.get("name"), str) and isinstance(item.get("type"), str):
                item["name"] = namer.new(snake(item["type"]))
            if after_block is not None and "inputs" not in item:
                item["inputs"] = after_block
        _place(ex, item, src)
        after_block = None
    for item in ex.layers:
        if isinstance(item, dict) and "inputs" in item:
            item["inputs"] = _rename(item["inputs"], aliases)
    if isinstance(model.get("outputs"), list):
        model["outputs"] = [_rename(o, aliases) for o in model["outputs"]]
    model["layers"] = ex.layers
    _record_stacks(model, ex)
    data.pop("blocks", None)
    return ex


def _record_stacks(model: dict[str, Any], ex: Expansion) -> None:
    """Append the uses' stack entries to `model.stacks`, each field positioned where the
    use wrote it (an option left unset points at the use)."""
    if not ex.stacks:
        return
    stacks = model.get("stacks")
    stacks = list(stacks) if isinstance(stacks, list) else []
    for entry, src in ex.stacks:
        k = len(stacks)
        stacks.append(entry)
        ex.origin[("model", "stacks", k)] = src
        for key in ("name", "repeat", *_STACK_KEYS):
            ex.origin[("model", "stacks", k, key)] = src + (key,)
    model["stacks"] = stacks


def _last_output(ex: Expansion, after_block: str | None) -> str | None:
    if after_block is not None:
        return after_block
    if ex.layers and isinstance(ex.layers[-1], dict):
        return ex.layers[-1].get("name")
    return None


def _place(ex: Expansion, item: Any, src: Path, fields: dict[str, Path] | None = None) -> int:
    j = len(ex.layers)
    ex.layers.append(item)
    ex.origin[("model", "layers", j)] = src
    for key, origin in (fields or {}).items():
        ex.origin[("model", "layers", j, key)] = origin
    return j


def _rename(ref: Any, names: dict[str, str]) -> Any:
    if isinstance(ref, str):
        base, dot, index = ref.rpartition(".")
        if ref not in names and dot and index.isdigit() and base in names:
            return f"{names[base]}.{index}"  # one output of a multi-output layer (`lstm.1`)
        return names.get(ref, ref)
    if isinstance(ref, list):
        return [_rename(r, names) for r in ref]
    if isinstance(ref, dict):
        return {k: _rename(v, names) for k, v in ref.items()}
    return ref


def _expand_call(
    ex, blocks, call, src: Path, name: str, prev: str | None, *, depth: int, stack: tuple[str, ...]
) -> str:
    """Expand one block use; returns the name of the layer holding its output."""
    bname = call["type"]
    block = blocks[bname]
    if bname in stack:
        cycle = " -> ".join((*stack, bname))
        ex.errors.append((src + ("type",), f"block '{bname}' uses itself: {cycle}", {}))
        return name
    if depth >= MAX_DEPTH:
        ex.errors.append(
            (
                src + ("type",),
                f"blocks nest deeper than {MAX_DEPTH} levels: "
                f"{' -> '.join(stack[:3])} -> ... -> {' -> '.join((*stack[-2:], bname))}",
                {"hint": "Flatten some of the blocks into their users."},
            )
        )
        return name
    if not isinstance(block, dict) or not isinstance(block.get("layers"), list):
        return name  # the schema reports the malformed block
    params = block.get("params") if isinstance(block.get("params"), dict) else {}
    block_inputs = block.get("inputs") if isinstance(block.get("inputs"), list) else ["x"]
    args = {k: v for k, v in call.items() if k not in _CALL_KEYS}
    for key in args:
        if key not in params:
            ex.errors.append(
                (
                    (*src, key),
                    f"unknown argument '{key}' for block '{bname}'",
                    {
                        "received": f"{key}={short_repr(args[key])}",
                        "hint": did_you_mean(key, params) or _valid(params),
                    },
                )
            )
    reps = call.get("repeat", 1)
    if isinstance(reps, bool) or not (
        isinstance(reps, int) and reps >= 1 or isinstance(reps, list) and reps
    ):
        ex.errors.append(
            (
                (*src, "repeat"),
                "repeat must be a positive integer or a non-empty list of per-repetition arguments",
                {"received": f"repeat={short_repr(reps)}"},
            )
        )
        return name
    count = reps if isinstance(reps, int) else len(reps)
    size = count * layer_count(blocks, bname)
    if ex.too_large or len(ex.layers) + size > MAX_LAYERS:
        if not ex.too_large:  # a repeat that came through a block parameter: `${n}`
            ex.errors.append(
                (
                    (*src, "repeat"),
                    f"this use of block '{bname}' expands to {size:,} layers; a model may "
                    f"have at most {MAX_LAYERS:,}",
                    {"hint": "Lower `repeat` here or in the blocks it uses."},
                )
            )
        ex.too_large = True
        return name
    rep_args = [{} for _ in range(reps)] if isinstance(reps, int) else reps
    options = {k: call[k] for k in _STACK_KEYS if k in call}
    if isinstance(reps, list) and options.get("scan") is True:
        ex.errors.append(
            (
                (*src, "scan"),
                "scan needs identical repetitions, and this use gives per-repetition arguments",
                {
                    "received": f"repeat={short_repr(reps)}",
                    "hint": "Use `repeat: N` with the arguments on the use, or `scan: false`.",
                },
            )
        )
        options.pop("scan")
    if count >= 2 and isinstance(reps, int) or options:
        stack = {"name": name, "repeat": count, **options}
        if isinstance(reps, list):
            stack["scan"] = False
        ex.stacks.append((stack, src))
    entry = _entry_refs(ex, call, src, block_inputs, prev, bname)
    out = name
    for r, extra in enumerate(rep_args):
        values: dict[str, tuple[Any, Path]] = {}
        for p, default in params.items():
            values[p] = (default, ("blocks", bname, "params", p))
        for p in args:
            values[p] = (args[p], (*src, p))
        if not isinstance(extra, dict):
            ex.errors.append(
                (
                    (*src, "repeat", r),
                    "each repetition is a mapping of arguments",
                    {"received": short_repr(extra)},
                )
            )
            extra = {}
        for p, v in extra.items():
            if p not in params:
                ex.errors.append(
                    (
                        (*src, "repeat", r, p),
                        f"unknown argument '{p}' for block '{bname}'",
                        {"hint": did_you_mean(p, params) or _valid(params)},
                    )
                )
            values[p] = (v, (*src, "repeat", r, p))
        missing = [
            p for p, (v, _) in values.items() if v is None and p not in args and p not in extra
        ]
        for p in missing:
            ex.errors.append(
                (
                    src,
                    f"missing required argument '{p}' for block '{bname}'",
                    {"hint": f"Add `{p}: ...` to this use of '{bname}'."},
                )
            )
        values["index"] = (r, src)
        prefix = f"{name}/{r}" if len(rep_args) > 1 else name
        out = _expand_body(
            ex, blocks, block, bname, prefix, entry, values, depth, (*stack, bname), call
        )
        entry = [out, *entry[1:]]
    return out


def _valid(params: dict) -> str:
    return "Block parameters: " + (", ".join(f"'{p}'" for p in params) or "none") + "."


def _entry_refs(ex, call, src, block_inputs, prev, bname) -> list[str | None]:
    given = call.get("inputs")
    if given is None:
        if len(block_inputs) > 1:
            ex.errors.append(
                (
                    (*src,),
                    f"block '{bname}' takes {len(block_inputs)} inputs "
                    f"({', '.join(block_inputs)}); name them in `inputs`",
                    {},
                )
            )
        return [prev] + [None] * (len(block_inputs) - 1)
    if isinstance(given, str):
        given = [given]
    if isinstance(given, dict):
        unknown = [k for k in given if k not in block_inputs]
        for k in unknown:
            ex.errors.append(
                (
                    (*src, "inputs", k),
                    f"block '{bname}' has no input '{k}'",
                    {"hint": did_you_mean(k, block_inputs) or _valid(dict.fromkeys(block_inputs))},
                )
            )
        return [given.get(b) for b in block_inputs]
    if isinstance(given, list) and len(given) != len(block_inputs):
        ex.errors.append(
            (
                (*src, "inputs"),
                f"block '{bname}' takes {len(block_inputs)} inputs",
                {"received": short_repr(given)},
            )
        )
    return (
        (list(given) + [None] * len(block_inputs))[: len(block_inputs)]
        if isinstance(given, list)
        else [prev]
    )


def _expand_body(ex, blocks, block, bname, prefix, entry, values, depth, stack, call) -> str:
    block_inputs = block.get("inputs") if isinstance(block.get("inputs"), list) else ["x"]
    inner = block["layers"]
    names = {b: ref for b, ref in zip(block_inputs, entry, strict=False) if ref is not None}
    namer = _Namer(
        {it["name"] for it in inner if isinstance(it, dict) and isinstance(it.get("name"), str)}
    )
    local = [
        it.get("name")
        if isinstance(it, dict) and isinstance(it.get("name"), str)
        else (
            namer.new(snake(it["type"]))
            if isinstance(it, dict) and isinstance(it.get("type"), str)
            else f"#{k}"
        )
        for k, it in enumerate(inner)
    ]
    for lname in local:
        names[lname] = f"{prefix}/{lname}"
    prev = entry[0]
    last = prev
    for k, item in enumerate(inner):
        bsrc = ("blocks", bname, "layers", k)
        if not isinstance(item, dict):
            _place(ex, item, bsrc)
            continue
        item, fields = _substitute(ex, item, bsrc, values)
        full = f"{prefix}/{local[k]}"
        if "inputs" in item:
            item["inputs"] = _inner_refs(ex, item["inputs"], names, (*bsrc, "inputs"), bname)
        elif prev is not None:
            item["inputs"] = prev
        if "trainable" in call and "trainable" not in item:
            item["trainable"] = call["trainable"]
        if isinstance(item.get("type"), str) and item["type"] in blocks:
            out = _expand_call(ex, blocks, item, bsrc, full, prev, depth=depth + 1, stack=stack)
            names[local[k]] = out
            prev = last = out
            continue
        item["name"] = full
        _place(ex, item, bsrc, fields)
        prev = last = full
    output = block.get("output")
    if isinstance(output, str):
        if output not in local:
            ex.errors.append(
                (
                    ("blocks", bname, "output"),
                    f"block '{bname}' has no layer '{output}'",
                    {"hint": did_you_mean(output, local)},
                )
            )
            return last or prefix
        return names[output]
    return last or prefix


def _inner_refs(ex, ref, names, path, bname):
    if isinstance(ref, str):
        if ref not in names:
            ex.errors.append(
                (
                    path,
                    f"unknown reference '{ref}' in block '{bname}'",
                    {
                        "received": repr(ref),
                        "hint": did_you_mean(ref, names) or _valid(dict.fromkeys(names)),
                    },
                )
            )
            return ref
        return names[ref]
    if isinstance(ref, list):
        return [_inner_refs(ex, r, names, (*path, i), bname) for i, r in enumerate(ref)]
    if isinstance(ref, dict):
        return {k: _inner_refs(ex, r, names, (*path, k), bname) for k, r in ref.items()}
    return ref


def _substitute(ex, item, bsrc: Path, values) -> tuple[dict, dict[str, Path]]:
    """Replace `${param}` in the layer's values; returns the new item and field origins."""
    fields: dict[str, Path] = {}

    def sub(value: Any, path: Path, top: str) -> Any:
        if isinstance(value, str):
            whole = _WHOLE.match(value)
            if whole:
                key = whole.group(1)
                if key in values:
                    fields.setdefault(top, values[key][1])
                    return values[key][0]
                _unknown(key, path)
                return value

            def one(m: re.Match) -> str:
                if m.group(1) in values:
                    return str(values[m.group(1)][0])
                _unknown(m.group(1), path)
                return m.group(0)

            return _EMBEDDED.sub(one, value)
        if isinstance(value, list):
            return [sub(v, (*path, i), top) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: sub(v, (*path, k), top) for k, v in value.items()}
        return value

    def _unknown(key: str, path: Path) -> None:
        ex.errors.append(
            (
                path,
                f"unknown block parameter '${{{key}}}'",
                {"hint": did_you_mean(key, values) or _valid(values)},
            )
        )

    out = {k: sub(v, (*bsrc, k), k) for k, v in item.items()}
    return out, fields


def known_types(blocks: dict[str, Any]) -> list[str]:
    """Layer types and block names, for 'Did you mean' on an unknown `type`."""
    return [*LAYER_TYPES, *(blocks or {})]


def origin_of(origin: dict[Path, Path], path: Path) -> Path:
    """Map a path in the expanded spec back to where it was written."""
    for cut in range(len(path), 0, -1):
        if path[:cut] in origin:
            return origin[path[:cut]] + path[cut:]
    return path


__all__ = ["expand", "origin_of", "snake", "known_types", "format_path"]
