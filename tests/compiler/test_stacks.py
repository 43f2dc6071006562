"""Repeated block uses as stacks: which scan, which rematerialize, the positioned errors
of a `scan: true` that cannot be, the stacked variables in the summary and the sharding
plan (pure Python: nothing here runs a model)."""

from __future__ import annotations

import re
import textwrap

import pytest
import yaml

from modelspec import SpecError, load, summary
from modelspec.compiler.sharding.plan import plan_for

BLOCKS = """\
blocks:
  ff:
    params: {units: 16}
    layers:
      - {name: ln, type: LayerNormalization}
      - {name: d1, type: Dense, units: "${units}", activation: relu}
      - {name: d2, type: Dense, units: 16}
      - {name: add, type: Add, inputs: [x, d2]}
"""
INDEXED_LN = '{name: ln, type: LayerNormalization, epsilon: "1.0e-${index}"}'
"""A layer whose argument differs per copy (`${index}`): the copies are not one scan."""


def write(tmp_path, uses: str, extra: str = "", blocks: str = BLOCKS) -> str:
    text = (
        blocks
        + "model:\n  inputs: {x: {shape: [16]}}\n"
        + extra
        + "  layers:\n"
        + textwrap.indent(textwrap.dedent(uses), "    ")
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def errors(path: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(path)
    return str(info.value).splitlines()


def line_col(path: str, needle: str) -> str:
    """`line:col` of the value of the first `key: value` text `needle` in the file."""
    key, _, value = needle.partition(": ")
    for i, line in enumerate(open(path).read().splitlines(), 1):
        if needle in line:
            return f"{i}:{line.index(needle) + len(key) + 3}"
    raise AssertionError(needle)


def test_repeat_of_four_scans_by_default_and_two_does_not(tmp_path):
    four = load(write(tmp_path, "- {name: h, type: ff, repeat: 4}\n"))
    assert [s.name for s in four.execution.stacks] == ["h"]
    stack = four.execution.stacks[0]
    assert stack.rel == ("ln", "d1", "d2", "add") and stack.carry_in == "x"
    assert stack.output == "h/3/add" and stack.count == 4
    two = load(write(tmp_path, "- {name: h, type: ff, repeat: 2}\n"))
    assert two.execution.stacks == () and two.model.stacks[0].repeat == 2
    forced = load(write(tmp_path, "- {name: h, type: ff, repeat: 2, scan: true}\n"))
    assert forced.execution.stacks[0].count == 2
    off = load(write(tmp_path, "- {name: h, type: ff, repeat: 6, scan: false}\n"))
    assert off.execution.stacks == ()


def test_the_expanded_spec_keeps_the_stacks(tmp_path):
    """`spec.yaml` of a run is the expanded spec: reloading it scans the same way."""
    spec = load(write(tmp_path, "- {name: h, type: ff, repeat: 4, remat: dots_saveable}\n"))
    dumped = spec.dump()
    assert dumped["model"]["stacks"] == [{"name": "h", "repeat": 4, "remat": "dots_saveable"}]
    again = load(dumped)
    assert again.execution == spec.execution
    assert again.execution.stacks[0].remat == "dots_saveable"


def test_remat_defaults_from_the_model_and_makes_segments_when_unscanned(tmp_path):
    spec = load(write(tmp_path, "- {name: h, type: ff, repeat: 2}\n", "  remat: full\n"))
    segs = spec.execution.segments
    assert [s.nodes for s in segs] == [
        ("h/0/ln", "h/0/d1", "h/0/d2", "h/0/add"),
        ("h/1/ln", "h/1/d1", "h/1/d2", "h/1/add"),
    ]
    assert segs[1].inputs == ("h/0/add",) and all(s.remat == "full" for s in segs)
    scanned = load(write(tmp_path, "- {name: h, type: ff, repeat: 4}\n", "  remat: full\n"))
    assert scanned.execution.stacks[0].remat == "full" and not scanned.execution.segments


@pytest.mark.parametrize(
    ("blocks", "use", "message"),
    [
        (
            BLOCKS.replace("{name: ln, type: LayerNormalization}", INDEXED_LN),
            "- {name: h, type: ff, repeat: 4, scan: true}\n",
            "block use 'h' cannot be scanned: its copies' layers have different arguments",
        ),
        (
            BLOCKS.replace(
                "{name: d2, type: Dense, units: 16}", "{name: d2, type: Dense, units: 8}"
            ).replace("[x, d2]", "[d2, d2]"),
            "- {name: h, type: ff, repeat: 4, scan: true}\n",
            "block use 'h' cannot be scanned: a copy's output does not have its input's shape",
        ),
        (
            BLOCKS.replace(
                "activation: relu}", "activation: relu, kernel_regularizer: {type: L2}}"
            ),
            "- {name: h, type: ff, repeat: 4, scan: true}\n",
            "layer 'h/0/d1' has a kernel regularizer",
        ),
        (
            BLOCKS.replace("activation: relu}", "activation: relu, trainable: false}"),
            "- {name: h, type: ff, repeat: 4, scan: true}\n",
            "layer 'h/0/d1' is frozen",
        ),
        (
            BLOCKS,
            "- {name: h, type: ff, repeat: 1, scan: true}\n",
            "a use repeated once has nothing to scan",
        ),
    ],
)
def test_a_scan_that_cannot_be_is_a_positioned_error(tmp_path, blocks, use, message):
    path = write(tmp_path, use, blocks=blocks)
    lines = errors(path)
    hit = [line for line in lines if message in line]
    assert hit, lines
    # positioned at the use's `scan: true`
    assert hit[0].startswith(f"{path}:{line_col(path, 'scan: true')}: model.layers[0].scan:")
    assert "Received: scan=True" in hit[0]


def test_unset_scan_falls_back_silently_when_the_copies_differ(tmp_path):
    blocks = BLOCKS.replace("{name: ln, type: LayerNormalization}", INDEXED_LN)
    spec = load(write(tmp_path, "- {name: h, type: ff, repeat: 4}\n", blocks=blocks))
    assert spec.execution.stacks == () and spec.model.stacks[0].scan is None


def test_per_repetition_arguments_cannot_scan(tmp_path):
    path = write(tmp_path, "- {name: h, type: ff, repeat: [{units: 8}, {}], scan: true}\n")
    (line,) = [x for x in errors(path) if "scan needs identical repetitions" in x]
    assert line.startswith(f"{path}:{line_col(path, 'scan: true')}: model.layers[0].scan:")


def test_masked_block_cannot_scan_or_remat(tmp_path):
    blocks = """\
blocks:
  enc:
    layers:
      - {name: d, type: Dense, units: 8}
"""
    head = "- {type: Embedding, input_dim: 10, output_dim: 8, mask_zero: true}\n"
    path = tmp_path / "m.yaml"
    for use, needle, message in [
        ("- {name: h, type: enc, repeat: 4, scan: true}\n", "scan: true", "carries a Keras mask"),
        (
            "- {name: h, type: enc, repeat: 2, remat: full}\n",
            "remat: full",
            "cannot be rematerialized",
        ),
    ]:
        path.write_text(
            blocks
            + "model:\n  inputs: {x: {shape: [5], dtype: int32}}\n  layers:\n"
            + textwrap.indent(head + use, "    ")
        )
        lines = errors(str(path))
        (line,) = [x for x in lines if message in x]
        assert line.startswith(f"{path}:{line_col(str(path), needle)}:"), line


def test_bad_remat_policy_lists_the_choices(tmp_path):
    path = write(tmp_path, "- {name: h, type: ff, repeat: 4, remat: dots}\n")
    text = "\n".join(errors(path))
    assert re.search(r"model\.layers\[0\]\.remat", text) or "remat" in text
    assert "dots_saveable" in text


def test_summary_and_sharding_plan_show_stacked_variables(tmp_path):
    spec = load(write(tmp_path, "- {name: h, type: ff, repeat: 4}\n- {type: Dense, units: 2}\n"))
    info = summary(spec)
    (row,) = info["stacks"]
    assert row["scan"] and row["repeat"] == 4 and row["remat"] == "none"
    shapes = {v["path"]: v["shape"] for v in row["variables"]}
    assert shapes["h/d1/kernel"] == [4, 16, 16] and shapes["h/ln/gamma"] == [4, 16]
    # totals still count every copy, as Keras would
    assert info["total_params"] == 4 * (32 + 272 + 272) + 34
    plan = plan_for(spec, {"data": 2, "fsdp": 2, "tensor": 2}, check_batch=False)
    kernel = next(p for p in plan.params if (p.layer, p.info.path) == ("h", "d1/kernel"))
    assert kernel.info.axes[0] == "layers" and kernel.spec[0] is None
    assert kernel.describe() == "P(None, 'fsdp', 'tensor')"
    assert sum(p.info.size for p in plan.params) == info["total_params"]


def test_stack_entry_that_matches_no_layers(tmp_path):
    data = yaml.safe_load(open(write(tmp_path, "- {type: Dense, units: 4}\n")).read())
    data["model"]["stacks"] = [{"name": "nope", "repeat": 3}]
    with pytest.raises(SpecError, match="stack 'nope': no layers named 'nope/<copy>/...'"):
        load(data)
