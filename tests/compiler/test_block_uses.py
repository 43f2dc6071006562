"""Block uses: positions of errors at use sites, schema checks of definitions, a
block as the first layer."""

from __future__ import annotations

import textwrap

import pytest

from modelspec import SpecError, load


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BLOCK = """\
blocks:
  mlp:
    params: {units: 4}
    layers:
      - {type: Dense, units: "${units}"}
      - {type: Dense, units: 2}
      - {type: Dense, units: 3}
"""


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
