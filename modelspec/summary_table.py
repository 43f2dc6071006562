"""The terminal rendering of `modelspec summary`: rich tables from the summary data.

Kept apart from `compiler/summary.py` (the data) so that the compiler never imports a
terminal library and other front ends (JSON, a web page) reuse the same data.
"""

from __future__ import annotations

from typing import Any

from modelspec.compiler.memory import BYTES_PER_PARAM, human_bytes
from modelspec.schema.precision import POLICIES
from modelspec.schema.tensors import format_shape


def render_table(summary: dict[str, Any]):
    """A rich Table plus the totals lines, like `keras.Model.summary()`."""
    from rich.table import Table

    table = Table(title=f'Model: "{summary["name"]}"', title_justify="left", show_lines=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    table.add_column("Param #", justify="right")
    table.add_column("FLOPs", justify="right")
    table.add_column("Connected to")
    for layer in summary["layers"]:
        shapes = layer.get("output_shapes") or [layer["output_shape"]]
        shown = [format_shape(tuple(s)) for s in shapes]
        policy = layer.get("dtype_policy", summary.get("dtype_policy"))
        override = f", {policy}" if policy != summary.get("dtype_policy") else ""
        table.add_row(
            f"{layer['name']} ({layer['type']}{override})",
            shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]",
            f"{layer['params']:,}",
            "?" if layer.get("flops") is None else f"{layer['flops']:,}",
            ", ".join(layer["inputs"]) or "-",
        )
    memory = summary["training_bytes_per_device"]
    totals = [
        f" Total params: {summary['total_params']:,} ({human_bytes(summary['total_bytes'])})",
        f" Trainable params: {summary['trainable_params']:,} "
        f"({human_bytes(summary['trainable_params'] * BYTES_PER_PARAM)})",
        f" Non-trainable params: {summary['non_trainable_params']:,} "
        f"({human_bytes(summary['non_trainable_params'] * BYTES_PER_PARAM)})",
        f" Forward FLOPs per example: {_flops_total(summary)}",
        f" Training memory, one device, at least: {human_bytes(memory['total'])}",
        f"   parameters {human_bytes(memory['params'])}, gradients "
        f"{human_bytes(memory['gradients'])}, optimizer state {human_bytes(memory['optimizer'])}, "
        f"activations {human_bytes(memory['activations'])} "
        f"({summary['examples_per_device']} examples per device)",
    ]
    if summary.get("dtype_policy", "float32") != "float32":
        compute = POLICIES[summary["dtype_policy"]][0]
        policy = summary["dtype_policy"]
        totals.append(f" Dtype policy: {policy} (float32 variables, {compute} computation)")
    totals.extend(_stack_lines(summary.get("stacks", [])))
    return table, totals


def _stack_lines(stacks: list[dict[str, Any]]) -> list[str]:
    """One line per repeated block use: how its copies compile, and for a scanned one
    its stacked variables (as checkpoints name them)."""
    lines = []
    for s in stacks:
        how = "scanned" if s["scan"] else "unrolled"
        lines.append(f" Block '{s['name']}': {s['repeat']} copies, {how}, remat {s['remat']}")
        for v in s["variables"]:
            lines.append(f"   {v['path']} {format_shape(tuple(v['shape']))}")
    return lines


def human_flops(n: float) -> str:
    """637258 -> '637.26 K' (decimal units, as FLOP counts are usually quoted)."""
    for unit in ("", " K", " M", " G", " T", " P"):
        if n < 1000 or unit == " P":
            return f"{n:.2f}{unit}" if unit else f"{int(n)}"
        n /= 1000
    return f"{n:.2f} P"


def _flops_total(summary: dict[str, Any]) -> str:
    """The total line's figure; 'at least' when a layer's count is unknown (a
    variable-length axis)."""
    total = summary["total_flops"]
    text = f"{total:,} ({human_flops(total)}FLOPs)"
    if summary.get("flops_complete", True):
        return text
    return f"at least {text}; '?': a size other than the batch axis is unknown"


def render_sharding(sharding: dict[str, Any]):
    """Per-parameter partition specs and per-device memory on a mesh."""
    from rich.table import Table

    mesh = ", ".join(f"{k}={v}" for k, v in sharding["mesh"].items())
    table = Table(title=f"Sharding on mesh ({mesh})", title_justify="left")
    for col in ("Parameter", "Shape", "Logical axes", "Partition spec", "Per device"):
        table.add_column(col, no_wrap=True)
    for p in sharding["parameters"]:
        table.add_row(
            f"{p['layer']}/{p['path']}",
            str(tuple(p["shape"])),
            "(" + ", ".join(str(a) for a in p["axes"]) + ")",
            p["partition_spec"],
            str(tuple(p["per_device_shape"])),
        )
    totals = [
        f" Parameters per device: {human_bytes(sharding['params_bytes_per_device'])}",
        f" Optimizer state per device: {human_bytes(sharding['optimizer_bytes_per_device'])} "
        f"({sharding['optimizer_slots']} slot(s) per trainable parameter)",
        " Batch axis -> " + ("x".join(sharding["rules"].get("batch", [])) or "replicated"),
    ]
    return table, totals
