"""`modelspec import MODEL.keras -o spec.yaml [--run-dir R]`, as a function.

Every problem — unsupported layers and arguments, code (Lambda, custom classes),
weights that do not fit — is collected and raised at once as a SpecError naming the
archive and the layers (the CLI prints them and exits 2); then nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelspec.errors import Diagnostic, SpecError
from modelspec.runtime.keras_import.config_to_spec import config_to_spec
from modelspec.runtime.keras_import.read import read_archive

COMPILE_KEYS = ("loss", "optimizer", "metrics", "loss_weights")
_SKIP_ARGS = {"name", "reduction", "dtype", "is_legacy_optimizer", "loss_scale_factor"}


@dataclass
class ImportResult:
    spec_file: Path
    run_dir: Path | None
    layers: int
    notes: list[str]


def import_keras(archive_path: Path, output: Path, run_dir: Path | None = None) -> ImportResult:
    """Write the spec of a `.keras` archive to `output` and, with `run_dir`, its weights
    as a step-0 checkpoint there."""
    from modelspec.compiler.load import load

    archive_path, output = Path(archive_path), Path(output)
    with read_archive(archive_path) as archive:
        imported = config_to_spec(archive.config, archive_path.stem)
        if imported.problems:
            raise _problems(archive_path, imported.problems)
        spec = imported.spec
        notes = _compile(spec, archive.config.get("compile_config"))
        try:
            checked = load(spec)
        except SpecError as exc:
            if not notes.get("mapped"):
                raise _problems(
                    archive_path, [_describe(d, spec) for d in exc.diagnostics]
                ) from None
            for key in COMPILE_KEYS:  # training settings that do not map are left out
                spec.pop(key, None)
            notes["text"].append(
                "the archive's compile settings (loss, optimizer, metrics) did not map to "
                "modelspec's and were left out: add them to the spec to train"
            )
            try:
                checked = load(spec)
            except SpecError as again:
                raise _problems(
                    archive_path, [_describe(d, spec) for d in again.diagnostics]
                ) from None
        from modelspec.runtime.keras_import.weights import read_weights, write_checkpoint

        values, problems = read_weights(archive.weights, checked, imported.groups)
        if problems:
            raise _problems(archive_path, problems)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(_header(archive_path) + yaml.safe_dump(spec, sort_keys=False))
        if run_dir is not None:
            write_checkpoint(output, Path(run_dir), values)
    return ImportResult(output, run_dir, len(spec["model"]["layers"]), notes["text"])


def _header(path: Path) -> str:
    return (
        f"# Imported from {path.name} by `modelspec import`. To fine-tune from the imported\n"
        "# weights, add `data:` and run `modelspec train` with the same --run-dir. The\n"
        "# checkpoint holds the state of the loss/optimizer/metrics written here: changing\n"
        "# them makes `train` refuse it (predict and evaluate do not mind).\n"
    )


def _problems(path: Path, problems: list[str]) -> SpecError:
    return SpecError(
        [
            Diagnostic(str(path), 0, 0, "import", p, hint=None if i else _HINT)
            for i, p in enumerate(problems)
        ]
    )


_HINT = (
    "Nothing was written. Rebuild these parts from built-in Keras layers (or write them "
    "in the spec by hand)."
)


def _describe(diag: Diagnostic, spec: dict) -> str:
    """A validation error of the generated spec, naming the Keras layer."""
    parts = str(diag.path).split(".")
    text = diag.format().split(": ", 1)[-1]
    if len(parts) > 2 and parts[:2] == ["model", "layers"] and parts[2].isdigit():
        layer = spec["model"]["layers"][int(parts[2])]
        return f"layer '{layer.get('name')}' ({layer.get('type')}): {text}"
    return text


def _compile(spec: dict, config: Any) -> dict[str, Any]:
    """Map Keras built-in loss/optimizer/metrics of `compile_config` into the spec."""
    notes: dict[str, Any] = {"mapped": False, "text": []}
    if not isinstance(config, dict) or not config:
        notes["text"].append("the archive has no compile settings: add loss and optimizer to train")
        return notes
    outputs = spec["model"].get("outputs") or []
    loss = config.get("loss")
    if isinstance(loss, list) and len(loss) == len(outputs):
        loss = dict(zip(outputs, loss, strict=True))
    if isinstance(loss, dict) and "class_name" not in loss:
        loss = {k: _object(v) for k, v in loss.items()}
    elif loss is not None:
        loss = _object(loss)
    if loss is not None:
        spec["loss"] = loss
    if config.get("optimizer") is not None:
        spec["optimizer"] = _object(config["optimizer"])
    metrics = config.get("metrics")
    if isinstance(metrics, list) and all(
        not isinstance(m, list | dict) or "class_name" in m for m in metrics
    ):
        spec["metrics"] = [_object(m) for m in metrics]
    weights = config.get("loss_weights")
    if isinstance(weights, list) and len(weights) == len(outputs):
        spec["loss_weights"] = dict(zip(outputs, weights, strict=True))
    elif isinstance(weights, dict):
        spec["loss_weights"] = weights
    notes["mapped"] = any(k in spec for k in COMPILE_KEYS)
    return notes


def _object(value: Any) -> Any:
    """A serialized Keras loss/metric/optimizer/schedule as ours: `{type, args...}`."""
    if isinstance(value, dict) and "class_name" in value:
        args = {
            k: _object(v)
            for k, v in (value.get("config") or {}).items()
            if v is not None and k not in _SKIP_ARGS and v is not False
        }
        return {"type": value["class_name"], **args}
    if isinstance(value, float):  # Keras stores float32 values: 0.0010000000474974513
        return float(str(np.float32(value)))
    return value
