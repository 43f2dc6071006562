"""Keras-style model summary from shape inference alone (no JAX, no devices).

Counting follows Keras: batch statistics and frozen weights are non-trainable params.
"""

from __future__ import annotations

from typing import Any

from modelspec.compiler.load import analysis
from modelspec.compiler.types import format_shape
from modelspec.schema.spec import Spec

BYTES_PER_PARAM = 4  # float32


def summarize(spec: Spec) -> dict[str, Any]:
    """Summary as plain data (the `--format json` output)."""
    an = analysis(spec)
    layers = []
    for name, inp in spec.model.inputs.items():
        layers.append(
            {
                "name": name,
                "type": "InputLayer",
                "output_shape": [None, *inp.shape],
                "dtype": inp.dtype,
                "params": 0,
                "trainable_params": 0,
                "inputs": [],
            }
        )
    for node in sorted(an.graph.nodes, key=lambda n: n.index):
        shape = an.shapes.get(node.name)
        if shape is None:
            continue
        layers.append(
            {
                "name": node.name,
                "type": node.layer.type,
                "output_shape": list(shape.output.shape),
                "dtype": shape.output.dtype,
                "params": shape.trainable_count + shape.non_trainable_count,
                "trainable_params": shape.trainable_count,
                "inputs": list(node.refs),
                "variables": [
                    {
                        "path": p.path,
                        "shape": list(p.shape),
                        "axes": list(p.axes),
                        "trainable": p.trainable,
                    }
                    for p in shape.params
                ],
            }
        )
    trainable = sum(s.trainable_count for s in an.shapes.values())
    non_trainable = sum(s.non_trainable_count for s in an.shapes.values())
    return {
        "name": spec.name,
        "inputs": list(an.graph.inputs),
        "outputs": list(an.graph.outputs),
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_bytes": (trainable + non_trainable) * BYTES_PER_PARAM,
        "training_bytes_per_device": _training_bytes(spec),
        "layers": layers,
    }


def _training_bytes(spec: Spec) -> dict[str, int]:
    from modelspec.compiler.memory import estimate  # imports this module

    return estimate(spec).as_dict()


def human_bytes(n: int) -> str:
    """1536 -> '1.50 KB' (binary units, up to EB so absurd sizes read as such)."""
    units = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.2f} EB"


def render_table(summary: dict[str, Any]):
    """A rich Table plus the totals lines, like `keras.Model.summary()`."""
    from rich.table import Table

    table = Table(title=f'Model: "{summary["name"]}"', title_justify="left", show_lines=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    table.add_column("Param #", justify="right")
    table.add_column("Connected to")
    for layer in summary["layers"]:
        table.add_row(
            f"{layer['name']} ({layer['type']})",
            format_shape(tuple(layer["output_shape"])),
            f"{layer['params']:,}",
            ", ".join(layer["inputs"]) or "-",
        )
    totals = [
        f" Total params: {summary['total_params']:,} ({human_bytes(summary['total_bytes'])})",
        f" Trainable params: {summary['trainable_params']:,} "
        f"({human_bytes(summary['trainable_params'] * BYTES_PER_PARAM)})",
        f" Non-trainable params: {summary['non_trainable_params']:,} "
        f"({human_bytes(summary['non_trainable_params'] * BYTES_PER_PARAM)})",
        f" Training memory, one device, at least: "
        f"{human_bytes(summary['training_bytes_per_device']['total'])}",
    ]
    return table, totals


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
