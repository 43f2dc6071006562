"""Helpers for the positioned-error tests of the conformance files: load a spec that must
be refused and get its one diagnostic, check that Keras refuses the same configuration,
and check where (`file:line`, path) and what the diagnostic says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError


def only_diagnostic(source: Any):
    """The one diagnostic of loading `source` (a path or a spec dict), which must be
    refused with a SpecError."""
    with pytest.raises(SpecError) as info:
        load(source)
    (diag,) = info.value.diagnostics
    return diag


def spec_file_diagnostic(tmp_path: Path, text: str):
    """The one diagnostic of loading the spec file `text` (written to tmp_path), so that
    line numbers count in `text`."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return only_diagnostic(path)


ONE_ARGUMENT_SPEC = """\
model:
  inputs:
    x: {{shape: {shape}, dtype: {dtype}}}
  layers:
    - type: {type}
      {arg}
"""
"""A spec with one input `x` and one layer whose argument lines `arg` start on line 6,
column 7 (format it with `shape`, `dtype`, `type` and `arg`)."""


def one_argument_diagnostic(tmp_path: Path, layer_type: str, arg: str, shape, dtype: str):
    """The one diagnostic of ONE_ARGUMENT_SPEC with this layer type, argument lines,
    input shape (as written in YAML) and dtype."""
    text = ONE_ARGUMENT_SPEC.format(type=layer_type, arg=arg, shape=shape, dtype=dtype)
    return spec_file_diagnostic(tmp_path, text)


def written(tmp_path: Path, layer_yaml: str, shape: list | str, dtype: str = "float32"):
    """A spec file with one input `x` and one layer written as `layer_yaml` (its first
    line is line 9); returns the one diagnostic loading it gives."""
    text = (
        "modelspec: 1\n"
        "name: t\n"
        "model:\n"
        "  inputs:\n"
        f"    x: {{shape: {shape}, dtype: {dtype}}}\n"
        "  layers:\n"
        "    - name: under_test\n"
        "      # the layer's arguments\n"
        + "".join(f"      {line}\n" for line in layer_yaml.strip().splitlines())
    )
    return spec_file_diagnostic(tmp_path, text)


def keras_refuses(
    keras_call: Callable[[], Any] | None,
    keras_says: str | None,
    errors: tuple[type[BaseException], ...] = (ValueError, TypeError),
) -> None:
    """Keras refuses the same configuration: `keras_call` raises one of `errors` matching
    `keras_says` (nothing to check when the case has no Keras call)."""
    if keras_call is not None:
        with pytest.raises(errors, match=keras_says):
            keras_call()


def assert_on_layer_field(diag, field: str | None, line: int, fragment: str) -> None:
    """The diagnostic is on `field` of the spec's first layer (on the layer itself when
    `field` is None), at `line`, and its message contains `fragment`."""
    path = "model.layers[0]" + (f".{field}" if field else "")
    assert (diag.path, diag.line) == (path, line), diag.format()
    assert fragment in diag.message, diag.format()
