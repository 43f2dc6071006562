"""Edge cases of loading and composing specs (each was a bug once)."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from modelspec import SpecError, load
from modelspec.cli import app
from modelspec.compiler.sharding.plan import parse_mesh
from modelspec.runtime.runlog import MetricsLog

BLOCK = """\
blocks:
  mlp:
    params: {units: 4}
    layers:
      - {type: Dense, units: "${units}"}
      - {type: Dense, units: 2}
      - {type: Dense, units: 3}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_block_use_error_after_another_block_points_at_the_use_site(tmp_path):
    path = write(
        tmp_path,
        "s.yaml",
        BLOCK
        + """\
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {type: mlp}
    - {type: mlp, unitz: 3}
""",
    )
    with pytest.raises(SpecError) as err:
        load(path)
    assert "s.yaml:12:19: model.layers[1].unitz: unknown argument 'unitz' for block 'mlp'" in str(
        err.value
    )


def test_block_definitions_are_schema_checked(tmp_path):
    path = write(
        tmp_path,
        "s.yaml",
        BLOCK.replace("    params:", "    ouput: x\n    params:")
        + """\
model:
  inputs: {x: {shape: [4]}}
  layers: [{type: mlp}]
""",
    )
    with pytest.raises(
        SpecError, match=r"blocks.mlp.ouput: unknown argument 'ouput'.*Did you mean 'output'"
    ):
        load(path)
    named = write(
        tmp_path,
        "n.yaml",
        "blocks:\n  Dense: {layers: [{type: Flatten}]}\n"
        "model: {inputs: {x: {shape: [2]}}, layers: [{type: Flatten}]}\n",
    )
    with pytest.raises(SpecError, match="block name 'Dense' is a Keras layer type"):
        load(named)


def test_block_as_first_layer_can_use_its_input(tmp_path):
    path = write(
        tmp_path,
        "s.yaml",
        """\
blocks:
  res:
    layers:
      - {name: d, type: Dense, units: 4}
      - {name: s, type: Add, inputs: [x, d]}
model:
  inputs: {features: {shape: [4]}}
  layers: [{type: res}]
""",
    )
    spec = load(path)
    assert spec.model.layers[1].inputs == ["features", "res/d"]


def test_yaml_merge_keys_override_and_errors(tmp_path):
    ok = write(
        tmp_path,
        "m.yaml",
        """\
model:
  inputs: {x: {shape: [3]}}
  layers:
    - &d {type: Dense, units: 4}
    - {<<: *d, units: 32}
""",
    )
    assert [layer.units for layer in load(ok).model.layers] == [4, 32]
    with pytest.raises(SpecError, match="invalid merge key"):
        load(write(tmp_path, "b.yaml", "l: &l [1]\nmodel: {<<: *l}\n"))
    with pytest.raises(SpecError, match="recursive YAML alias"):
        load(write(tmp_path, "r.yaml", "x: &a [*a]\n"))


def test_non_utf8_and_tab_indented_json(tmp_path):
    (tmp_path / "u.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not a UTF-8 text file"):
        load(tmp_path / "u.yaml")
    path = write(
        tmp_path,
        "t.json",
        '{\n\t"model": {"inputs": {"x": {"shape": [3]}},\n'
        '\t\t"layers": [{"type": "Dense", "units": -2}]}}\n',
    )
    with pytest.raises(SpecError) as err:
        load(path)
    assert "t.json:3:41: model.layers[0].units: must be > 0" in str(err.value)


def test_set_reads_exponents_as_numbers():
    spec = load(
        {
            "model": {"inputs": {"x": {"shape": [2]}}, "layers": [{"type": "Flatten"}]},
            "optimizer": {"type": "Adam"},
        },
        ["optimizer.learning_rate=1e-3"],
    )
    assert spec.optimizer.learning_rate == 0.001


@pytest.mark.parametrize("text", ["data=0", "data=-1", "data", "data=2,data=2", "=2"])
def test_bad_mesh_flags(text):
    with pytest.raises(ValueError):
        parse_mesh(text)
    assert (
        CliRunner()
        .invoke(
            app, ["summary", "specs/text_classifier.yaml", "--mesh", text], catch_exceptions=False
        )
        .exit_code
        == 2
    )


def test_metrics_log_survives_a_cut_line(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1, "loss": 1.0})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2, "lo')
    assert log.read() == [{"epoch": 1, "loss": 1.0}]
    log.truncate(1)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 1, "loss": 1.0}\n'


def test_empty_layer_normalization_axis_is_an_error():
    with pytest.raises(SpecError, match="axis"):
        load(
            {
                "model": {
                    "inputs": {"x": {"shape": [2]}},
                    "layers": [{"type": "LayerNormalization", "axis": []}],
                }
            }
        )
