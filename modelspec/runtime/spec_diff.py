"""Is this the model the run was trained with? Compare the spec with `<run_dir>/spec.yaml`.

Weights only fit the model they were trained with. A changed layer shape is caught by
the checkpoint's structure check, but a changed activation, `Rescaling.scale` or
dropout rate keeps every shape and silently changes `predict`'s outputs. So `predict`
and `evaluate` compare the `model:` section of the spec they are given with the
resolved spec that `train` wrote into the run directory, defaults included, and refuse
(exit 2) when it differs, listing what differs; `--allow-spec-change` turns the refusal
into a warning. Only `model:` matters for inference: the optimizer, loss, metrics, data
and training options may differ (evaluating with other metrics is legitimate).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from modelspec.errors import Diagnostic, SpecError, format_path, short_repr

_MISSING = object()


def _walk(old: Any, new: Any, path: tuple, out: list[tuple[tuple, str]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _walk(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(a, b, (*path, i), out)
    elif old != new:
        if isinstance(old, list) and isinstance(new, list):
            text = f"trained with {len(old)} entries, now {len(new)}"
        else:
            was = "nothing" if old is _MISSING else short_repr(old)
            now = "nothing" if new is _MISSING else short_repr(new)
            text = f"trained with {was}, now {now}"
        out.append((path, text))


def _model(spec: Any) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)["model"]


def _trained_model(path: Path) -> dict[str, Any] | None:
    """The run's model section with defaults filled in (raw if it no longer loads)."""
    from modelspec.compiler.load import load

    try:
        return _model(load(path))
    except SpecError:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None
        return data.get("model") if isinstance(data, dict) else None


def model_changes(run_dir: Path, spec: Any) -> list[tuple[tuple, str]] | None:
    """(path, 'trained with X, now Y') for every difference in `model:`; None when the
    run directory's spec.yaml is missing or unreadable (nothing to compare with)."""
    saved = run_dir / "spec.yaml"
    if not saved.is_file():
        return None
    trained = _trained_model(saved)
    if trained is None:
        return None
    now = _model(spec)
    if trained.keys() != now.keys():  # raw fallback: compare what was written
        now = spec.dump()["model"]
    out: list[tuple[tuple, str]] = []
    _walk(_computed(trained), _computed(now), ("model",), out)
    return out


COMPILE_ONLY = ("stacks", "remat")
"""`model:` keys that change how the model compiles, never what it computes: scanning
and rematerializing repeated blocks (a scan's stacked checkpoint layout is checked by
the restore itself)."""


def _computed(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in COMPILE_ONLY}


def check_model_unchanged(run_dir: Path, spec: Any, *, allow: bool) -> None:
    """Refuse (or, with `allow`, warn on stderr) when the model differs from the run's."""
    changes = model_changes(run_dir, spec)
    if changes is None:
        print(
            f"Warning: {run_dir / 'spec.yaml'} is missing or unreadable, so modelspec cannot "
            "check that this is the model the checkpoint was trained with.",
            file=sys.stderr,
        )
        return
    if not changes:
        return
    lines = [f"{format_path(p)}: {text}" for p, text in changes]
    shown = "; ".join(lines[:8]) + (f"; ... and {len(lines) - 8} more" if len(lines) > 8 else "")
    if allow:
        print(
            f"Warning: the model differs from the one trained in {run_dir}: {shown}",
            file=sys.stderr,
        )
        return
    raise SpecError.single(
        Diagnostic.at(
            spec.locate(changes[0][0]),
            ("model",),
            f"the model differs from the one trained in {run_dir}, so its weights would "
            f"give other outputs: {shown}",
            hint=f"Pass the spec the run was trained with ({run_dir / 'spec.yaml'}), or "
            "--allow-spec-change to use these weights anyway.",
        )
    )
