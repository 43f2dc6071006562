"""Malformed specs made by mutating the shipped ones: the generator of the spec fuzzer.

Why one module for both users: the CI test (`tests/reliability/test_fuzz.py`) and the
long run (`bench/reliability.py fuzz`) must draw the same cases, and a case found by the
long run must be reproducible from its number alone. So every case is a pure function of
`(seed, index)` (its own `random.Random`), independent of the cases before it.

A case is a small folder of files (`Mutant.files`): the spec to check (`spec.yaml` or
`spec.json`), the bases its `extends` names, and sometimes special files (a FIFO, a
symbolic link). The text `@CANARY@` stands for the absolute path of a file that only
executed code would create: the runner substitutes it, then checks the file is absent.

Most cases edit the parsed spec (`mutation_ops.py`), dump it as YAML (block or flow) or
JSON (strict or not), then maybe damage the text; the rest damage the original bytes or
replace the file outright.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.mutation_ops import (
    CANARY,
    DATA_OPERATORS,
    FIFO,
    Draft,
    symlink,
)

__all__ = ["CANARY", "FIFO", "Mutant", "generate", "mutant", "shipped_specs", "symlink"]


@dataclass(frozen=True)
class Mutant:
    """One generated case: check `files[main]` (with `overrides` as `--set`)."""

    case: int
    source: str
    operators: tuple[str, ...]
    files: dict[str, bytes | tuple[str, ...]]
    overrides: tuple[str, ...] = ()
    main: str = "spec.yaml"


def shipped_specs(root: Path) -> list[Path]:
    """Every shipped spec, sorted: the seeds of the mutations."""
    found = [*root.glob("specs/**/*.yaml"), *root.glob("examples/**/*.yaml")]
    return sorted(p for p in found if p.is_file())


@cache
def _source(path: Path) -> tuple[bytes, Any, dict[str, bytes]]:
    """A shipped spec's bytes, data, and the base files its `extends` names."""
    raw = path.read_bytes()
    data = yaml.safe_load(raw)
    bases = data.get("extends", []) if isinstance(data, dict) else []
    bases = bases if isinstance(bases, list) else [bases]
    return raw, data, {name: (path.parent / name).read_bytes() for name in bases}


MAX_BODY = 600 << 10
"""Longest generated spec text (a little over the loader's 512 KiB cap)."""

# -- text and bytes ----------------------------------------------------------------------

DOCUMENTS = [
    b"",
    b"# only a comment\n",
    b"---\n...\n",
    b"null\n",
    b"[]\n",
    b"42\n",
    b"'a string'\n",
    b"modelspec: 1\n---\nname: second document\n",
    b"%YAML 1.1\n---\nmodelspec: 1\n",
    b"%TAG ! tag:yaml.org,2002:python/object/apply:\n--- !os.system ['touch " + b"@CANARY@']\n",
    b"%TAG !e! tag:yaml.org,2002:python/\n---\nname: !e!name:os.system x\n",
    b"{",
    b"[[[[[[[[[[",
    b"key: [unclosed\n",
    b"? complex key\n: value\n",
    b"? [1, 2]\n: list key\n",
    b"? {a: 1}\n: map key\n",
    b"\xef\xbb\xbfmodelspec: 1\n",
    b"\xff\xfe\x00m\x00o\x00",
    b"modelspec: 1\nname: a\nname: b\n",
    b"<<: {name: merged}\nmodelspec: 1\n",
    b"&a modelspec: 1\n",
    b"!!binary AAAA\n",
    b"\t\tmodelspec: 1\n",
]


def _dump(d: Draft) -> tuple[str, str]:
    """(format, text) of the draft's data, placeholders still in."""
    style = d.rng.choice(["block", "block", "flow", "json", "json_loose"])
    unicode = d.rng.random() < 0.5
    if style.startswith("json"):
        try:
            text = json.dumps(
                d.data, ensure_ascii=not unicode, indent=d.rng.choice([None, 2]), default=str
            )
        except (ValueError, RecursionError):  # a shared, self-containing value
            style = "block"
        else:
            if style == "json_loose":
                text = _loosen_json(d.rng, text)
            return style, text
    try:
        text = yaml.dump(  # libyaml's emitter: the pure-Python one takes seconds per case
            d.data,
            Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
            sort_keys=False,
            allow_unicode=unicode,
            default_flow_style=style == "flow",
        )
    except RecursionError:
        text = "name: too-deep-to-dump\n"
    return style, text


def _loosen_json(rng: random.Random, text: str) -> str:
    """JSON as people write it by mistake: trailing commas, comments, NaN, single quotes."""
    edits = [
        lambda t: t.replace("}", ",}", 1),
        lambda t: t.replace("]", ",]", 1),
        lambda t: "// a comment\n" + t,
        lambda t: t.replace('"', "'", 4),
        lambda t: t.replace("1", "NaN", 1),
        lambda t: t.replace("1", "Infinity", 1),
        lambda t: t.replace('"name"', "name", 1),
        lambda t: t + "\n{}",
        lambda t: t.replace(":", "=", 1),
    ]
    return rng.choice(edits)(text)


def _substitute(d: Draft, text: str) -> str:
    for key, raw in reversed(d.tokens.items()):  # a later token may hold an earlier one
        if key == "@@DUPLICATE@@":
            continue
        for form in (f"'{key}'", f'"{key}"', key):
            # a big list of a big token would be gigabytes: past MAX_BODY, the rest of
            # the copies stay placeholders (plain strings to the loader)
            room = max(1, 4 * MAX_BODY // max(len(raw), 1))
            text = text.replace(form, raw, room)
    if "@@DUPLICATE@@" in d.tokens:
        lines = text.splitlines(keepends=True)
        keyed = [i for i, line in enumerate(lines) if ":" in line and line.strip()]
        if keyed:
            i = d.rng.choice(keyed)
            lines.insert(i + 1, lines[i])
        text = "".join(lines)
    return text


def _damage(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    """One byte- or line-level edit of a file's text."""
    kind = rng.choice(
        ["truncate", "byte_flip", "insert_bytes", "control_char", "line_endings", "bom",
         "indent", "delete_line", "swap_lines", "utf16", "tab_indent"]
    )  # fmt: skip
    n = len(raw)
    if kind == "truncate":
        return kind, raw[: rng.randrange(n + 1)]
    if kind == "byte_flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 5)):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return kind, bytes(data)
    if kind == "insert_bytes":
        at = rng.randrange(n + 1)
        return kind, raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + raw[
            at:
        ]
    if kind == "control_char":
        char = rng.choice(
            [*(chr(c) for c in range(32)), "\x7f", "\x85", "\u2028", "\u2029", "\ufeff",
             "\u202e", "\ufffe"]
        )  # fmt: skip
        at = rng.randrange(n + 1)
        bad = char.encode() if rng.random() < 0.9 else b"\xed\xa0\x80"  # a UTF-8 surrogate
        return kind, raw[:at] + bad + raw[at:]
    if kind == "line_endings":
        return kind, raw.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\n"]))
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + raw
    if kind == "utf16":
        return kind, raw.decode("utf-8", "replace").encode("utf-16")
    lines = raw.split(b"\n")
    i = rng.randrange(len(lines))
    if kind == "indent":
        lines[i] = b" " * rng.randint(1, 7) + lines[i]
    elif kind == "tab_indent":
        lines[i] = b"\t" + lines[i].lstrip(b" ")
    elif kind == "delete_line":
        del lines[i]
    else:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return kind, b"\n".join(lines)


# -- cases ---------------------------------------------------------------------------------


def mutant(seed: int, index: int, specs: list[Path], root: Path) -> Mutant:
    """Case `index` of the run with `seed` (a pure function of both)."""
    rng = random.Random(f"modelspec-fuzz:{seed}:{index}")
    path = specs[index % len(specs)]
    raw, data, bases = _source(path)
    source = str(path.relative_to(root))
    files: dict[str, bytes | tuple[str, ...]] = dict(bases)
    roll = rng.random()
    if roll < 0.04:
        doc = rng.choice(DOCUMENTS)
        return Mutant(index, source, ("document",), {**files, "spec.yaml": doc})
    if roll < 0.08:
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 16, 300, 5000])))
        return Mutant(index, source, ("random_bytes",), {**files, "spec.yaml": junk})
    if roll < 0.18:
        ops, text = [], raw
        for _ in range(rng.randint(1, 2)):
            kind, text = _damage(rng, text)
            ops.append(kind)
        return Mutant(index, source, tuple(ops), {**files, "spec.yaml": text})
    draft = Draft(rng, json.loads(json.dumps(data)), bases)
    names = list(DATA_OPERATORS)
    ops = [rng.choice(names) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    for op in ops:
        DATA_OPERATORS[op](draft)
    style, text = _dump(draft)
    main = "spec.json" if style.startswith("json") and rng.random() < 0.5 else "spec.yaml"
    body = _substitute(draft, text).encode("utf-8", "surrogatepass")
    if len(body) > MAX_BODY:  # past the loader's 512 KiB cap, more bytes test nothing new
        body = body[:MAX_BODY]
        ops.append("cut")
    ops.append(style)
    if rng.random() < 0.25:
        kind, body = _damage(rng, body)
        ops.append(kind)
    files.update(draft.extra_files)
    files[main] = body
    return Mutant(index, source, tuple(ops), files, tuple(draft.overrides), main)


def generate(seed: int, count: int, root: Path, start: int = 0) -> Iterator[Mutant]:
    """Cases `start .. start + count - 1` of the run with `seed`."""
    specs = shipped_specs(root)
    for index in range(start, start + count):
        yield mutant(seed, index, specs, root)
