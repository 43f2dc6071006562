"""Limits on block expansion, checked before anything is expanded.

`repeat` multiplies: ten nested blocks of `repeat: 10` are 10^10 layers, and expanding
them would exhaust memory long before any error. The layer count of every block is
computed arithmetically (memoized per block), so an oversized spec is refused in
microseconds, naming the use that blows up.
"""

from __future__ import annotations

from typing import Any

from modelspec.errors import Path

MAX_DEPTH = 64
"""Deepest nesting of blocks inside blocks."""
MAX_LAYERS = 10_000
"""Most layers a model may expand to (each `repeat` counted)."""


def _repeats(item: dict) -> int:
    reps = item.get("repeat", 1)
    if isinstance(reps, list):
        return len(reps)
    return reps if isinstance(reps, int) and not isinstance(reps, bool) and reps > 0 else 1


def _count(blocks: dict, name: str, memo: dict[str, int], stack: tuple[str, ...]) -> int:
    """Layers one use of block `name` expands to (cycles and overdeep nesting count 0:
    the expansion reports them)."""
    if name in memo:
        return memo[name]
    block = blocks[name]
    if name in stack or len(stack) > MAX_DEPTH or not isinstance(block, dict):
        return 0
    inner = block.get("layers") if isinstance(block.get("layers"), list) else []
    total = 0
    for item in inner:
        if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"] in blocks:
            total += _repeats(item) * _count(blocks, item["type"], memo, (*stack, name))
        else:
            total += 1
    memo[name] = total
    return total


def layer_count(blocks: dict, name: str) -> int:
    """Layers one use of block `name` expands to (its own `repeat`s included)."""
    return _count(blocks, name, {}, ())


def size_errors(items: list, blocks: dict) -> list[tuple[Path, str, dict[str, Any]]]:
    """Errors (at the use sites to blame) when `model.layers` would expand past
    MAX_LAYERS; none when it fits."""
    memo: dict[str, int] = {}
    sizes = [
        _repeats(it) * _count(blocks, it["type"], memo, ())
        if isinstance(it, dict) and isinstance(it.get("type"), str) and it["type"] in blocks
        else 1
        for it in items
    ]
    errors: list[tuple[Path, str, dict[str, Any]]] = []
    if sum(sizes) <= MAX_LAYERS:
        return errors
    for i, (item, size) in enumerate(zip(items, sizes, strict=True)):
        if size > 1 and (size > MAX_LAYERS or size * 10 > sum(sizes)):
            errors.append(
                (
                    ("model", "layers", i, "type"),
                    f"this use of block '{item['type']}' expands to {size:,} layers; a model "
                    f"may have at most {MAX_LAYERS:,}",
                    {"hint": "Lower `repeat` here or in the blocks it uses."},
                )
            )
    if not errors:
        errors.append(
            (
                ("model", "layers"),
                f"the model expands to {sum(sizes):,} layers; at most {MAX_LAYERS:,} are allowed",
                {"hint": "Lower the `repeat` counts of its blocks."},
            )
        )
    return errors
