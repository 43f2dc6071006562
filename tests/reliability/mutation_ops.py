"""The data-level mutations of the spec fuzzer (`mutations.py` composes them).

Each operator edits a parsed spec (`Draft.data`) in place: the shipped spec's structure
is kept everywhere but at one spot, so the case gets past the YAML reader and reaches the
schema, the graph and the shape checks where a fuzzer of raw bytes rarely would. What
cannot be said in plain data (tags, alias bombs, merge keys) goes in as a placeholder
token that `mutations.py` swaps for raw YAML text after dumping.
"""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

CANARY = "@CANARY@"
"""Placeholder for the canary file's absolute path (filled in by the runner)."""

FIFO = ("fifo",)
"""A `Mutant.files` value: make a named pipe there (nothing ever writes to it)."""


def symlink(target: str) -> tuple[str, str]:
    """A `Mutant.files` value: a symbolic link to `target`."""
    return ("symlink", target)


@dataclass
class Draft:
    """A case being built: data-level edits first, then the text, then byte edits."""

    rng: random.Random
    data: Any
    base_files: dict[str, bytes]
    tokens: dict[str, str] = field(default_factory=dict)
    """Placeholder string in `data` -> raw YAML text substituted after dumping."""
    extra_files: dict[str, bytes | tuple[str, ...]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    main: str = "spec.yaml"
    text: str | None = None
    raw: bytes | None = None

    def token(self, yaml_text: str) -> str:
        """A placeholder that becomes `yaml_text` (a tag, an alias bomb) in the file."""
        key = f"@@T{len(self.tokens)}@@"
        self.tokens[key] = yaml_text
        return key


# -- where to mutate -------------------------------------------------------------------


def _slots(data: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) holding a value, the root excluded; each container once
    (an earlier mutation may have made the data share or contain itself), at most 70
    levels down."""
    out, seen, todo = [], set(), [(data, 0)]
    while todo:
        node, depth = todo.pop()
        if id(node) in seen or depth > 70:
            continue
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            out.append((node, key))
            if isinstance(value, dict | list):
                todo.append((value, depth + 1))
    return out


def _pick(d: Draft, want=None) -> tuple[Any, Any] | None:
    slots = _slots(d.data)
    if want is not None:
        slots = [(c, k) for c, k in slots if want(c[k])]
    return d.rng.choice(slots) if slots else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# -- values a mutation puts somewhere ---------------------------------------------------

WEIRD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[2J\x1b[31mred",
    "\u202eesneD",  # right-to-left override
    "D\u200bense",  # zero-width space
    "Dеnse",  # Cyrillic 'е'
    "e\u0301\u0301\u0301",
    "\U0001f600" * 3,
    "\ufeffDense",
    "\u2028",
    "\x85",
    "\t\r\n",
    "%s%n{0}${x}",
    "${units}",
    "../../../../etc/passwd",
    "NaN",
    "1e309",
    "-0",
    "0x10",
    "~",
    "null",
    "yes",
    "<<",
    "*a",
    "&a",
    "!!python/object:os.system",
]

NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    0,
    -1,
    -(10**9),
    10**12,
    10**10,
    2**63,
    2**64 + 1,
    10**40,
    1e308,
    -1e308,
    5e-324,
    0.5,
    -0.0,
    1.5,
    True,
    False,
]

TAGS = [
    f'!!python/object/apply:os.system ["touch {CANARY}"]',
    f'!!python/object/apply:subprocess.check_call [["touch", "{CANARY}"]]',
    f"!!python/object/apply:builtins.exec [\"open('{CANARY}', 'w').close()\"]",
    f'!!python/object/new:builtins.open ["{CANARY}", "w"]',
    f'!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {CANARY}"]',
    f'!!python/object:pathlib.Path {{_raw_paths: ["{CANARY}"]}}',
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!binary aGVsbG8gd29ybGQ=",
    "!!binary '!!!not base64'",
    "!!set {a, b}",
    "!!omap [{a: 1}, {b: 2}]",
    "!!timestamp 2001-12-14t21:59:43.10-05:00",
    "!!float abc",
    "!!int 0x_",
    "!!bool maybe",
    "!!null x",
    "!!str",
    "!custom {a: 1}",
    "!!map [1, 2]",
    "!!seq {a: 1}",
]


def _alias_bomb(width: int, depth: int) -> str:
    parts = ["&b0 [" + ", ".join(["lol"] * width) + "]"]
    parts += [f"&b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]" for i in range(1, depth)]
    return "[" + ", ".join(parts) + "]"


ALIAS_TEXTS = [
    _alias_bomb(10, 9),
    _alias_bomb(9, 7),
    _alias_bomb(3, 20),
    "&r [*r]",
    "&r {a: *r}",
    "*undefined",
    "&a [1, &a 2, *a]",
    "{<<: &m {type: Dense, units: 3}, units: 4}",
    "{<<: [&m1 {units: 1}, &m2 {type: Dense}], name: merged}",
    "{<<: 5}",
    "{<<: [1, 2]}",
    "{<<: *nowhere}",
    "{<<: {<<: {<<: {units: 2}}}}",
]

EXTENDS_TARGETS = [
    "/dev/zero",
    "/dev/urandom",
    "/dev/stdin",
    "/proc/self/environ",
    "/proc/self/mem",
    "/etc/passwd",
    "/etc/shadow",
    "/",
    ".",
    "..",
    "../outside.yaml",
    "spec.yaml",
    "missing.yaml",
    "base dir",
    "fifo.yaml",
    "link.yaml",
    "loop.yaml",
    "cycle_a.yaml",
    "bomb.yaml",
    "random.yaml",
    "http://example.invalid/spec.yaml",
    "file:///etc/passwd",
    "~/.ssh/id_rsa",
    "$HOME/.bashrc",
    "a\x00b.yaml",
    "x" * 5000 + ".yaml",
    "",
    42,
    None,
    [],
    {"a": 1},
    ["random.yaml"] * 40,
]


# -- data-level operators ----------------------------------------------------------------


def op_delete_key(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot:
        container, key = slot
        del container[key]


def op_wrong_type(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot:
        container, key = slot
        container[key] = d.rng.choice(
            [[], {}, [1, 2], {"a": {"b": 1}}, "text", 3, 2.5, True, None, [[[]]], {"type": 7}]
        )


def op_bad_number(d: Draft) -> None:
    slot = _pick(d, _is_number) or _pick(d, lambda v: not isinstance(v, dict | list))
    if slot:
        container, key = slot
        container[key] = d.rng.choice(NUMBERS)


def op_unicode(d: Draft) -> None:
    slot = _pick(d, lambda v: isinstance(v, str)) or _pick(d, lambda v: True)
    if not slot:
        return
    container, key = slot
    weird = d.rng.choice(WEIRD_STRINGS)
    if isinstance(container, dict) and d.rng.random() < 0.4:  # the key, not the value
        container[weird or "\x00"] = container.pop(key)
    elif isinstance(container[key], str) and d.rng.random() < 0.5:
        s = container[key]
        at = d.rng.randrange(len(s) + 1)
        container[key] = s[:at] + weird + s[at:]
    else:
        container[key] = weird


def op_deep_nesting(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot:
        container, key = slot
        depth = d.rng.choice([5, 30, 63, 64, 65, 100, 1000, 100_000])
        if depth > 65:  # as raw flow text: PyYAML's dumper recurses per level
            opened = "".join(d.rng.choice(["[", "{k: "]) for _ in range(depth))
            closing = "".join("]" if c == "[" else "}" for c in reversed(opened) if c in "[{")
            container[key] = d.token(opened + "1" + closing)
            return
        value = container[key]
        for _ in range(depth):
            value = [value] if d.rng.random() < 0.5 else {"k": value}
        container[key] = value


def op_long_string(d: Draft) -> None:
    slot = _pick(d, lambda v: isinstance(v, str)) or _pick(d, lambda v: True)
    if slot:
        container, key = slot
        n = d.rng.choice([1_000, 30_000, 300_000, 2_200_000])
        container[key] = d.rng.choice(["x", "é", "\U0001f600", "ab "]) * (n // 4)


def op_big_list(d: Draft) -> None:
    slot = _pick(d, lambda v: isinstance(v, list)) or _pick(d, lambda v: True)
    if slot:
        container, key = slot
        item = container[key][0] if isinstance(container[key], list) and container[key] else 1
        try:
            size = len(json.dumps(item))
        except (TypeError, ValueError, RecursionError):  # shared or self-containing
            size = 1 << 20
        count = d.rng.choice([100, 1_000, 10_000, 100_000])
        count = max(1, min(count, (700 << 10) // max(size, 1)))
        if size >= 1 << 20:
            container[key] = [item] * count
        else:  # as raw flow text: representing 10^5 nodes takes PyYAML seconds
            container[key] = d.token("[" + ", ".join([json.dumps(item)] * count) + "]")


def op_swap(d: Draft) -> None:
    slots = _slots(d.data)
    if len(slots) >= 2:
        (c1, k1), (c2, k2) = d.rng.sample(slots, 2)
        try:
            c1[k1], c2[k2] = copy.deepcopy(c2[k2]), copy.deepcopy(c1[k1])
        except (KeyError, IndexError):  # one slot was inside the other
            pass


def op_rename_key(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot and isinstance(slot[0], dict):
        container, key = slot
        name = str(key)
        i = d.rng.randrange(len(name) + 1)
        container[name[:i] + d.rng.choice("xs_-.[0] ") + name[i + 1 :]] = container.pop(key)


def op_duplicate_key(d: Draft) -> None:
    """Handled on the text: the same key twice in one mapping."""
    d.tokens.setdefault("@@DUPLICATE@@", "")


def op_share(d: Draft) -> None:
    """Two slots holding the same object: PyYAML writes an anchor and an alias."""
    slots = _slots(d.data)
    if len(slots) >= 2:
        (c1, k1), (c2, k2) = d.rng.sample(slots, 2)
        try:
            c2[k2] = c1[k1]
        except (KeyError, IndexError):
            pass


def op_tag(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot:
        container, key = slot
        container[key] = d.token(d.rng.choice(TAGS))


def op_alias(d: Draft) -> None:
    slot = _pick(d, lambda v: True)
    if slot:
        container, key = slot
        container[key] = d.token(d.rng.choice(ALIAS_TEXTS))
    elif isinstance(d.data, dict):
        d.data["bomb"] = d.token(d.rng.choice(ALIAS_TEXTS))


def op_extends(d: Draft) -> None:
    target = d.rng.choice(EXTENDS_TARGETS)
    files = d.extra_files
    files["base dir/keep.yaml"] = b"name: x\n"
    files["fifo.yaml"] = FIFO
    files["link.yaml"] = symlink(d.rng.choice(["/etc/passwd", "/dev/zero", "spec.yaml", "nope"]))
    files["loop.yaml"] = symlink("loop.yaml")
    files["cycle_a.yaml"] = b"extends: cycle_b.yaml\nname: a\n"
    files["cycle_b.yaml"] = b"extends: cycle_a.yaml\nname: b\n"
    files["bomb.yaml"] = ("name: bomb\nseed: " + _alias_bomb(10, 9) + "\n").encode()
    files["random.yaml"] = bytes(d.rng.randrange(256) for _ in range(d.rng.randrange(1, 400)))
    if isinstance(d.data, dict):
        d.data["extends"] = target
    else:
        d.data = {"extends": target}


def op_override(d: Draft) -> None:
    paths = ["seed", "name", "model.layers[0].units", "model.layers.nope", "train.epochs",
             "optimizer", "data.batch_size", "model.layers[99]", "", "a..b", "model.layers[-1]",
             "x" * 300, "model.inputs", "\x1b[2J"]  # fmt: skip
    values = ["!!python/object/apply:os.system ['touch @CANARY@']", ".nan", "1e999", "[",
              "{a: [", "&a [*a]", "10000000000000", "-5", "\x00", "", "'", "*b", "{<<: 3}",
              _alias_bomb(10, 9)]  # fmt: skip
    for _ in range(d.rng.randint(1, 3)):
        if d.rng.random() < 0.1:
            d.overrides.append(d.rng.choice(["novalue", "=3", "=", "\u202e=1"]))
        else:
            d.overrides.append(f"{d.rng.choice(paths)}={d.rng.choice(values)}")


DATA_OPERATORS = {
    "delete_key": op_delete_key,
    "wrong_type": op_wrong_type,
    "bad_number": op_bad_number,
    "unicode": op_unicode,
    "deep_nesting": op_deep_nesting,
    "long_string": op_long_string,
    "big_list": op_big_list,
    "swap": op_swap,
    "rename_key": op_rename_key,
    "duplicate_key": op_duplicate_key,
    "anchor_alias": op_share,
    "tag": op_tag,
    "alias_or_merge": op_alias,
    "extends": op_extends,
    "override": op_override,
}
