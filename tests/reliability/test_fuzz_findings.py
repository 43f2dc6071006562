"""Regression tests for what the spec fuzzer found (`bench/reliability.py fuzz`), one per
defect, each reduced from the generated case to the smallest spec that showed it."""

from __future__ import annotations

import os
import time

import pytest

from modelspec import SpecError, load
from modelspec.compiler.extends import MAX_SPEC_BYTES
from modelspec.compiler.memory import human_bytes
from modelspec.schema.tensors import MAX_RANK, ShapeError, TensorType

HEAD = "modelspec: 1\nname: t\n"


def lines_of(path) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load(path)
    return [d.format() for d in exc.value.diagnostics]


def test_a_spec_file_over_the_size_cap_is_positioned_where_it_passes_it(tmp_path):
    """Was `spec.yaml: <file>: ...` with no line (line 0)."""
    path = tmp_path / "big.yaml"
    filler = "# " + "x" * 97 + "\n"  # 100-byte lines
    path.write_text(HEAD + filler * (MAX_SPEC_BYTES // 100 + 10))
    [line] = lines_of(path)
    # 2 header lines of 21 bytes, then 100 bytes per line: byte 524,289 (the first past
    # the cap) is byte 68 of line 3 + 5242
    assert line.startswith(f"{path}:5245:68: <file>: {path} is larger than 512 KiB"), line


@pytest.mark.parametrize(
    ("files", "name", "reason"),
    [
        ({"loop.yaml": "loop.yaml"}, "loop.yaml", "a loop of symbolic links"),
        ({"a.yaml": "b.yaml", "b.yaml": "a.yaml"}, "a.yaml", "a loop of symbolic links"),
        ({}, '"base\\0.yaml"', "embedded null byte"),
    ],
    ids=["self_link", "two_links", "nul_byte"],
)
def test_extends_paths_that_cannot_be_resolved_are_positioned(tmp_path, files, name, reason):
    """Was a RuntimeError ('Symlink loop') or ValueError traceback from Path.resolve."""
    for link, target in files.items():
        os.symlink(target, tmp_path / link)
    path = tmp_path / "spec.yaml"
    path.write_text(f"extends: {name}\n{HEAD}")
    [line] = lines_of(path)
    assert line.startswith(f"{path}:1:10: extends: cannot resolve the base spec's path"), line
    assert reason in line


def test_memory_estimates_beyond_a_float_are_written_not_crashed(tmp_path):
    """Was OverflowError in human_bytes: sizes past 1.8e308 bytes do not fit a float."""
    assert human_bytes(10**400) == "8.67E+381 EB"
    assert human_bytes(2000 * 1024**6) == "2.00E+3 EB"
    assert human_bytes(1536) == "1.50 KB" and human_bytes(5 * 1024**6) == "5.00 EB"
    path = tmp_path / "s.yaml"
    shape = ", ".join(["1000000000000000000"] * 20)
    path.write_text(
        HEAD + f"model:\n  inputs: {{x: {{shape: [{shape}]}}}}\n  layers:\n"
        "    - {type: Dense, units: 2}\n"
    )
    [line] = lines_of(path)
    assert "training needs at least" in line and "E+" in line, line


def test_an_input_of_twenty_thousand_axes_is_refused_at_once(tmp_path):
    """Was a hang: MultiHeadAttention's axis checks are quadratic in the rank, and took
    minutes for an input of 100,000 axes (20,000 here: tens of seconds before the fix).
    Tensors have at most 64 axes, as in NumPy."""
    path = tmp_path / "s.yaml"
    shape = ", ".join(["2"] * 20_000)
    path.write_text(
        HEAD + f"model:\n  inputs: {{x: {{shape: [{shape}]}}}}\n  layers:\n"
        "    - {type: MultiHeadAttention, num_heads: 2, key_dim: 4, "
        "inputs: {query: x, value: x}}\n"
    )
    started = time.perf_counter()
    [line] = lines_of(path)
    assert time.perf_counter() - started < 5
    assert line.startswith(f"{path}:4:23: model.inputs.x.shape: list should have at most 63 items")


def test_input_ranks_up_to_the_limit_are_accepted(tmp_path):
    path = tmp_path / "s.yaml"
    shape = ", ".join(["1"] * (MAX_RANK - 1))
    path.write_text(
        HEAD + f"model:\n  inputs: {{x: {{shape: [{shape}]}}}}\n  layers:\n"
        "    - {type: Dense, units: 2}\n"
    )
    assert load(path).shapes["dense"].outputs[0].rank == MAX_RANK


def test_a_reshape_to_thousands_of_axes_is_refused(tmp_path):
    """Was ValueError (an int of more than 4,300 digits in the message) for a
    target_shape of 8s as long as the fuzzer's lists."""
    path = tmp_path / "s.yaml"
    target = ", ".join(["8"] * 5000)
    path.write_text(
        HEAD + "model:\n  inputs: {x: {shape: [4]}}\n  layers:\n"
        f"    - {{type: Reshape, target_shape: [{target}]}}\n"
    )
    [line] = lines_of(path)
    assert "model.layers[0].target_shape: list should have at most 63 items" in line, line


def test_a_tensor_type_past_the_rank_limit_is_a_shape_error():
    """The same limit for tensors made by layers, positioned at the layer by `infer`."""
    TensorType((None,) * MAX_RANK)
    with pytest.raises(ShapeError, match="at most 64 axes .* would have 65"):
        TensorType((None,) * (MAX_RANK + 1))
