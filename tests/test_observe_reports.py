"""`check --format github|json` (GitHub Actions annotations, JSON for other CI) and the
FLOPs of `summary`: hand-computed for Dense, Conv2D, MultiHeadAttention and LSTM, the
digits CNN's total equal to the sum of its rows, and a rule for every conformance case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.load import load
from modelspec.compiler.summary import summarize
from modelspec.errors import Diagnostic
from modelspec.observe.annotations import github_annotation

ROOT = Path(__file__).resolve().parents[1]
BAD = """\
modelspec: 1
name: bad
model:
  inputs:
    x: {shape: [8]}
  layers:
    - {type: Dense, units: 4, activation: rellu}
"""


def test_check_github_annotation_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    result = CliRunner().invoke(app, ["check", str(spec), "--format", "github"])
    assert result.exit_code == 2
    first = result.stdout.splitlines()[0]
    assert first == (
        f"::error file={spec},line=7,col=43,title=modelspec::model.layers[0].activation: "
        "unknown activation 'rellu'. Received: activation='rellu'. Did you mean 'relu'?"
    )


def test_github_annotation_escapes_as_the_runner_requires():
    diag = Diagnostic("dir,a:b/s.yaml", 3, 5, "p", "100% bad\r\nvalue, here: x")
    assert github_annotation(diag) == (
        "::error file=dir%2Ca%3Ab/s.yaml,line=3,col=5,title=modelspec::"
        "p: 100%25 bad%0D%0Avalue, here: x."
    )
    unpositioned = Diagnostic("<--set>", 0, 0, "train.epochs", "must be positive")
    assert github_annotation(unpositioned) == (
        "::error file=<--set>,title=modelspec::train.epochs: must be positive."
    )


def test_check_json_report(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD)
    good = ROOT / "examples" / "iris" / "mlp.yaml"
    result = CliRunner().invoke(app, ["check", str(good), str(spec), "--format", "json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)  # nothing else on stdout
    assert report == {
        "ok": False,
        "errors": [
            {
                "file": str(spec),
                "line": 7,
                "col": 43,
                "path": "model.layers[0].activation",
                "message": "unknown activation 'rellu'",
                "received": "activation='rellu'",
                "hint": "Did you mean 'relu'?",
            }
        ],
    }
    result = CliRunner().invoke(app, ["check", str(good), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "errors": []}


def test_check_refuses_an_unknown_format():
    result = CliRunner().invoke(app, ["check", "x.yaml", "--format", "xml"])
    assert result.exit_code == 2
    assert "must be one of text, github, json" in result.output


def _flops(inputs: dict, layer: dict) -> int | None:
    spec = {
        "modelspec": 1,
        "name": "f",
        "model": {
            "inputs": {k: {"shape": list(v)} for k, v in inputs.items()},
            "layers": [{"name": "under_test", **layer}],
        },
    }
    rows = {row["name"]: row for row in summarize(load(spec))["layers"]}
    return rows["under_test"]["flops"]


@pytest.mark.parametrize(
    ("inputs", "layer", "expected"),
    [
        # 2·in·out + bias + activation, per position
        ({"x": [20]}, {"type": "Dense", "units": 30, "activation": "relu"}, 2 * 20 * 30 + 30 + 30),
        ({"x": [5, 20]}, {"type": "Dense", "units": 30, "use_bias": False}, 5 * 2 * 20 * 30),
        # 2·k·k·cin·cout·H_out·W_out (+ bias per output element): 8x8x3 -> 6x6x16
        (
            {"x": [8, 8, 3]},
            {"type": "Conv2D", "filters": 16, "kernel_size": 3},
            2 * 3 * 3 * 3 * 16 * 6 * 6 + 16 * 6 * 6,
        ),
        # groups divide the input channels each filter sees
        (
            {"x": [8, 8, 4]},
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "groups": 2, "padding": "same"}
            | {"use_bias": False},
            2 * 3 * 3 * (4 // 2) * 8 * 8 * 8,
        ),
        # LSTM: per step 2·(in + units)·4·units + bias 4·units + gate activations 4·units
        ({"x": [7, 5]}, {"type": "LSTM", "units": 3}, 7 * (2 * (5 + 3) * 12 + 12 + 12)),
        ({"x": [None, 5]}, {"type": "LSTM", "units": 3}, None),  # unknown timesteps
        ({"x": [4, 4, 2]}, {"type": "MaxPooling2D"}, 2 * 2 * 2 * 4),  # window 4 per output
        ({"x": [4, 4, 2]}, {"type": "Flatten"}, 0),
        ({"x": [6]}, {"type": "Dropout", "rate": 0.5}, 0),
        ({"x": [6]}, {"type": "LayerNormalization"}, 5 * 6),
    ],
)
def test_flops_hand_computed(inputs, layer, expected):
    assert _flops(inputs, layer) == expected


def test_flops_multi_head_attention():
    """query (10, 32), value (6, 16); 4 heads of 8; output back to 32 features."""
    layer = {
        "type": "MultiHeadAttention",
        "num_heads": 4,
        "key_dim": 8,
        "inputs": {"query": "q", "value": "v"},
    }
    query = 10 * (2 * 32 * 4 * 8 + 4 * 8)  # projection + bias, per query position
    key = value = 6 * (2 * 16 * 4 * 8 + 4 * 8)
    output = 10 * (2 * 4 * 8 * 32 + 32)
    scores = 4 * 10 * 6 * (2 * 8 + 1 + 2 * 8)  # QK^T, softmax, AV per head and score
    assert query + key + value + output + scores == 62192
    assert _flops({"q": [10, 32], "v": [6, 16]}, layer) == 62192


def test_digits_cnn_total_is_the_sum_of_its_rows():
    info = summarize(load(ROOT / "examples" / "digits" / "cnn.yaml"))
    rows = [row["flops"] for row in info["layers"]]
    assert None not in rows and info["flops_complete"]
    assert info["total_flops"] == sum(rows) == 637258
    result = CliRunner().invoke(app, ["summary", str(ROOT / "examples/digits/cnn.yaml")])
    assert result.exit_code == 0, result.output
    assert "Forward FLOPs per example: 637,258 (637.26 KFLOPs)" in result.stdout
    assert "591,872" in result.stdout  # conv2d_1: 2·9·32·64·16 + bias + relu
    assert "optimizer state" in result.stdout and "activations" in result.stdout


def test_summary_marks_unknown_flops():
    spec = {
        "modelspec": 1,
        "name": "f",
        "model": {
            "inputs": {"x": {"shape": [None, 5]}},
            "layers": [{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 2}],
        },
    }
    info = summarize(load(spec))
    assert [row["flops"] for row in info["layers"]] == [0, None, 2 * 3 * 2 + 2]
    assert info["total_flops"] == 14 and not info["flops_complete"]

    from modelspec.summary_table import render_table

    table, totals = render_table(info)
    assert any("at least 14" in line for line in totals)


def _conformance_cases():
    import importlib
    import pkgutil

    import tests.conformance as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("test_"):
            try:
                mod = importlib.import_module(f"tests.conformance.{module.name}")
            except pytest.skip.Exception:  # an optional oracle (TensorFlow) is missing
                continue
            yield from getattr(mod, "CASES", [])


def test_every_conformance_case_has_a_flops_count():
    """Every layer type's rule runs on every configuration the conformance suite uses:
    a count >= 0 (None only with an unknown size), and > 0 for a layer with weights
    that computes on the device (lookups aside)."""
    from modelspec.schema.layers import LAYER_TYPES
    from tests.conformance.harness import spec_for

    seen = set()
    for case in _conformance_cases():
        spec = load(spec_for(case))
        info = summarize(spec)
        row = next(r for r in info["layers"] if r["name"] == "under_test")
        flops = row["flops"]
        known = all(None not in shape for shape, _ in case.inputs.values())
        assert flops is not None or not known, case.id
        assert flops is None or flops >= 0, case.id
        cls = LAYER_TYPES[row["type"]]
        if known and row["params"] and not cls.host and "Embedding" not in row["type"]:
            assert flops > 0, case.id
        seen.add(row["type"])
    assert len(seen) > 60
