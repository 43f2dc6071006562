"""The run's `class_names.json`: which class name each label index of an output stands
for, written by `train` for sources whose labels name classes (class folders, string
label columns) and read by `predict` to print class names.

Which sources have class names is the source spec's own `class_names_of` reference
(no branch per kind here). The file's top level describes one output (the first with
class names: `class_names`, `label_mode`, `output`, `from_logits`); a source with class
names for several outputs also lists each under `outputs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.schema.vocabulary import load_reference

CLASS_NAMES_FILE = "class_names.json"
"""Written to the run directory by `train`: labels for `predict`."""

ClassNames = dict[str, tuple[list[str], str]]
"""Model output name -> (class names in label order, label mode: int/categorical/binary)."""


def write_class_names(run_dir: Path, spec: Any) -> None:
    """Write the class names of the training source's labels to
    `run_dir/class_names.json` (nothing for sources without class names), with what
    `predict` needs to turn outputs into class names: the output, the label mode and
    whether the loss takes logits."""
    data = getattr(spec, "data", None)
    source = getattr(data, "train", None)
    ref = getattr(source, "class_names_of", None)
    if not ref:
        return
    outputs = list(spec.graph.outputs)
    found: ClassNames = load_reference(ref)(source, Path(spec.base_dir), outputs)
    records = {}
    for output, (classes, label_mode) in found.items():
        loss = spec.loss.get(output) if isinstance(spec.loss, dict) else spec.loss
        out = spec.output_type(output) if hasattr(spec, "output_type") else None
        if label_mode == "int" and len(classes) == 2 and out is not None and out.shape[-1] == 1:
            label_mode = "binary"  # one unit scoring class 1: index 0/1 labels, sigmoid
        records[output] = {
            "class_names": classes,
            "label_mode": label_mode,
            "output": output,
            "from_logits": bool(getattr(loss, "from_logits", False)),
        }
    if not records:
        return
    record = dict(next(iter(records.values())))
    if len(records) > 1:
        record["outputs"] = records
    (Path(run_dir) / CLASS_NAMES_FILE).write_text(json.dumps(record, indent=2) + "\n")


def prediction_lines(run_dir: Path, outputs: dict[str, np.ndarray], names: list[str]) -> list[str]:
    """`name: class (probability)` per predicted example, when the run has a
    `class_names.json`; else nothing."""
    file = Path(run_dir) / CLASS_NAMES_FILE
    if not file.is_file():
        return []
    record = json.loads(file.read_text())
    classes, values = record["class_names"], np.asarray(outputs[record["output"]], np.float64)
    if record["label_mode"] == "binary":
        score = values.reshape(len(values), -1)[:, 0]
        prob = 1 / (1 + np.exp(-score)) if record["from_logits"] else score
        index = (prob > 0.5).astype(int)
        prob = np.where(index == 1, prob, 1 - prob)
    else:
        if record["from_logits"]:
            values = np.exp(values - values.max(axis=-1, keepdims=True))
            values /= values.sum(axis=-1, keepdims=True)
        index, prob = values.argmax(axis=-1), values.max(axis=-1)
    return [
        f"{n}: {classes[int(i)]} ({float(p):.4f})"
        for n, i, p in zip(names, index, prob, strict=True)
    ]
