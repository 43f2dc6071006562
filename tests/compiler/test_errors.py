"""Malformed specs: each error is positioned (file:line:col), names the field path, says
what was received and how to fix it; exit code 2; never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from modelspec.cli import app

HEAD = """\
modelspec: 1
model:
  inputs:
    x: {shape: [16]}
  layers:
"""

# (id, document, expected diagnostic lines exactly as printed)
CASES = [
    (
        "unknown_type",
        HEAD + "    - {type: Dense, units: 8}\n    - {type: Conv2d, filters: 8, kernel_size: 3}\n",
        [
            "bad.yaml:7:14: model.layers[1].type: unknown layer type 'Conv2d'. Received: type='Conv2d'. "
            "Did you mean 'Conv2D'?"
        ],
    ),
    (
        "unknown_argument",
        HEAD + "    - {type: Dense, units: 8, activaton: relu}\n",
        [
            "bad.yaml:6:31: model.layers[0].activaton: unknown argument 'activaton' for Dense. "
            "Received: activaton='relu'. Did you mean 'activation'?"
        ],
    ),
    (
        "wrong_value_type",
        HEAD + "    - {type: Dense, units: many}\n",
        [
            "bad.yaml:6:28: model.layers[0].units: must be an integer. Received: units='many'. "
            "Write a whole number (YAML numbers take no quotes)."
        ],
    ),
    (
        "out_of_range",
        HEAD + "    - {type: Dense, units: 8}\n    - {type: Dropout, rate: 1.5}\n",
        [
            "bad.yaml:7:29: model.layers[1].rate: must be < 1.0. Received: rate=1.5. "
            "Valid range: 0 <= rate < 1."
        ],
    ),
    (
        "unknown_reference",
        HEAD + "    - {name: hidden, type: Dense, units: 8}\n"
        "    - {type: Dense, units: 2, inputs: hiden}\n",
        [
            "bad.yaml:7:39: model.layers[1].inputs: unknown reference 'hiden'. Received: 'hiden'. "
            "Did you mean 'hidden'?"
        ],
    ),
    (
        "cycle",
        HEAD + "    - {name: a, type: Dense, units: 8, inputs: c}\n"
        "    - {name: b, type: Dense, units: 8, inputs: a}\n"
        "    - {name: c, type: Dense, units: 8, inputs: b}\n",
        [
            "bad.yaml:6:48: model.layers[0].inputs: cycle in the layer graph: a -> c -> b -> a. "
            "A layer cannot depend on its own output; break the cycle."
        ],
    ),
    (
        "duplicate_name",
        HEAD + "    - {name: h, type: Dense, units: 8}\n    - {name: h, type: Dense, units: 4}\n",
        [
            "bad.yaml:7:14: model.layers[1].name: duplicate name 'h'. Received: 'h'. "
            "It is first used at line 6; layer names must be unique."
        ],
    ),
    (
        "missing_required",
        HEAD + "    - {type: Dense, activation: relu}\n",
        [
            "bad.yaml:6:7: model.layers[0].units: missing required argument 'units' for Dense. "
            "Add `units: ...`."
        ],
    ),
    (
        "shape_mismatch",
        HEAD + "    - {name: a, type: Dense, units: 32}\n"
        "    - {name: b, type: Dense, units: 64, inputs: x}\n"
        "    - {type: Add, inputs: [a, b]}\n",
        [
            "bad.yaml:8:27: model.layers[2].inputs: Add 'add': Add inputs have incompatible shapes "
            "(axis 1: 32 vs 64). Received: 'a' (None, 32), 'b' (None, 64)."
        ],
    ),
    (
        "impossible_reshape",
        HEAD + "    - {type: Reshape, target_shape: [5, 3]}\n",
        [
            "bad.yaml:6:37: model.layers[0].target_shape: Reshape 'reshape' (input 'x' (None, 16)): "
            "cannot reshape (None, 16) to (5, 3): 16 values per sample vs 15. "
            "Received: target_shape=[5, 3]. The product of target_shape must be 16; "
            "use -1 for one axis to infer it."
        ],
    ),
    (
        "invalid_yaml",
        HEAD + "    - {type: Dense, units: 8\n",
        [
            "bad.yaml:7:1: <document>: invalid YAML: expected ',' or '}', but got '<stream end>'. "
            "Check indentation, colons and brackets near this position."
        ],
    ),
    (
        "unknown_activation",
        HEAD + "    - {type: Dense, units: 8, activation: rellu}\n",
        [
            "bad.yaml:6:43: model.layers[0].activation: unknown activation 'rellu'. "
            "Received: activation='rellu'. Did you mean 'relu'?"
        ],
    ),
    (
        "python_tag",
        HEAD + '    - !!python/object/apply:os.system ["echo pwned"]\n',
        [
            "bad.yaml:6:7: model.layers[0]: YAML tag '!!python/object/apply:os.system' is not allowed: "
            "specs are data, never code. Received: !!python/object/apply:os.system. "
            "Remove the tag and write the value as plain YAML."
        ],
    ),
    (
        "wrong_rank",
        HEAD + "    - {type: Conv2D, filters: 4, kernel_size: 3}\n",
        [
            "bad.yaml:6:7: model.layers[0]: Conv2D 'conv2d': expects rank-4 input (batch, height, "
            "width, channels), got rank 2. Received: 'x' (None, 16). Insert a Reshape (or Flatten) "
            "layer to get that rank."
        ],
    ),
    (
        "several_at_once",
        HEAD + "    - {type: Dense, units: 0}\n    - {type: Dense, unitz: 3}\n",
        [
            "bad.yaml:6:28: model.layers[0].units: must be > 0. Received: units=0. "
            "Valid values: units > 0.",
            "bad.yaml:7:7: model.layers[1].units: missing required argument 'units' for Dense. "
            "Add `units: ...`.",
            "bad.yaml:7:21: model.layers[1].unitz: unknown argument 'unitz' for Dense. "
            "Received: unitz=3. Did you mean 'units'?",
        ],
    ),
]


@pytest.mark.parametrize("case_id,text,expected", CASES, ids=[c[0] for c in CASES])
def test_malformed_spec_is_positioned(tmp_path, monkeypatch, case_id, text, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["check", "bad.yaml"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("bad.yaml:")]
    assert lines == expected
    assert "Traceback" not in result.output


def test_errors_after_a_valid_layer_keep_real_positions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        HEAD + "    - {type: Dense, units: 8}\n    - {type: Dense, unit: 2}\n"
    )
    result = CliRunner().invoke(app, ["check", "bad.yaml"])
    assert "bad.yaml:7:7: model.layers[1].units: missing required argument" in result.stderr
    assert "bad.yaml:7:21: model.layers[1].unit: unknown argument 'unit'" in result.stderr


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "    - {type: Dens, units: 8}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "modelspec", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert ":6:14: model.layers[0].type: unknown layer type 'Dens'" in proc.stderr


def test_json_spec_errors_are_positioned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text(
        textwrap.dedent("""\
        {"model": {"inputs": {"x": {"shape": [4]}},
                   "layers": [{"type": "Dense", "units": -3}]}}
        """)
    )
    result = CliRunner().invoke(app, ["check", "bad.json"])
    assert result.exit_code == 2
    assert "bad.json:2:50: model.layers[0].units: must be > 0. Received: units=-3." in result.stderr


def test_set_override_errors_name_the_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.yaml").write_text(HEAD + "    - {name: out, type: Dense, units: 8}\n")
    result = CliRunner().invoke(app, ["check", "ok.yaml", "--set", "model.layers.out.units=-1"])
    assert result.exit_code == 2
    assert (
        "--set 'model.layers.out.units=-1': model.layers[0].units: must be > 0. Received: units=-1."
    ) in result.stderr


def test_block_errors_point_into_the_block_or_use_site(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.yaml").write_text(
        textwrap.dedent("""\
        blocks:
          mlp:
            params: {width: null}
            layers:
              - {type: Dense, units: "${width}"}
              - {type: Dense, unit: 3}
        model:
          inputs: {x: {shape: [4]}}
          layers:
            - {type: mlp, width: -2}
        """)
    )
    result = CliRunner().invoke(app, ["check", "b.yaml"])
    assert result.exit_code == 2
    err = result.stderr
    assert "b.yaml:10:26: model.layers[0].units: must be > 0. Received: units=-2." in err
    assert "b.yaml:6:23: blocks.mlp.layers[1].unit: unknown argument 'unit' for Dense." in err


def test_schema_and_graph_errors_are_reported_together(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        HEAD + "    - {name: a, type: Dense, units: 32}\n"
        "    - {name: b, type: Dense, units: 64, inputs: x}\n"
        "    - {type: Add, inputs: [a, b]}\n"
        "    - {type: Dense, units: 10, activaton: relu}\n"
    )
    result = CliRunner().invoke(app, ["check", "bad.yaml"])
    lines = [line for line in result.stderr.splitlines() if line.startswith("bad.yaml:")]
    assert [line.split(": ")[0] for line in lines] == ["bad.yaml:8:27", "bad.yaml:9:32"]
    assert "FAIL bad.yaml: 2 error(s)" in result.stdout
