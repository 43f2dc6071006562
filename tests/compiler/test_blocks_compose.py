"""Blocks (`blocks:` + `repeat`), `extends:` and `--set` overrides."""

from __future__ import annotations

import textwrap

import pytest

from modelspec import SpecError, load, summary


def spec_with_block(uses: str) -> dict:
    import yaml

    return yaml.safe_load(
        textwrap.dedent("""\
        blocks:
          dense_block:
            params: {units: null, act: relu}
            layers:
              - {name: fc, type: Dense, units: "${units}", activation: "${act}"}
              - {name: norm, type: LayerNormalization}
        model:
          inputs: {x: {shape: [8]}}
          layers:
        """)
        + textwrap.indent(textwrap.dedent(uses), "    ")
    )


def test_block_expands_with_arguments():
    spec = load(
        spec_with_block("- {name: b, type: dense_block, units: 16}\n- {type: Dense, units: 2}\n")
    )
    names = [layer.name for layer in spec.model.layers]
    assert names == ["b/fc", "b/norm", "dense"]
    assert spec.model.layers[0].units == 16 and spec.model.layers[0].activation == "relu"
    assert spec.model.layers[2].inputs == "b/norm"


def test_repeat_int_chains_copies():
    spec = load(spec_with_block("- {name: b, type: dense_block, units: 8, repeat: 3}\n"))
    names = [layer.name for layer in spec.model.layers]
    assert names == ["b/0/fc", "b/0/norm", "b/1/fc", "b/1/norm", "b/2/fc", "b/2/norm"]
    assert spec.model.layers[2].inputs == "b/0/norm"
    assert summary(spec)["total_params"] == 3 * (8 * 8 + 8 + 16)


def test_repeat_list_gives_per_repetition_arguments():
    spec = load(
        spec_with_block(
            "- {name: b, type: dense_block, units: 4, repeat: [{units: 32}, {units: 16, act: tanh}, {}]}\n"
        )
    )
    dense = [layer for layer in spec.model.layers if layer.type == "Dense"]
    assert [(d.units, d.activation) for d in dense] == [(32, "relu"), (16, "tanh"), (4, "relu")]


def test_reference_to_block_use_means_its_output():
    spec = load(
        spec_with_block(
            "- {name: b, type: dense_block, units: 8}\n- {name: skip, type: Add, inputs: [x, b]}\n"
        )
    )
    assert spec.model.layers[-1].inputs == ["x", "b/norm"]


def test_nested_blocks_and_index(tmp_path):
    import yaml

    data = yaml.safe_load(
        textwrap.dedent("""\
        blocks:
          inner:
            params: {units: 4}
            layers: [{name: d, type: Dense, units: "${units}"}]
          outer:
            params: {units: 4}
            layers:
              - {name: first, type: inner, units: "${units}"}
              - {name: second, type: inner, units: 3}
        model:
          inputs: {x: {shape: [5]}}
          layers:
            - {name: o, type: outer, units: 6, repeat: 2}
        """)
    )
    spec = load(data)
    assert [(x.name, x.units) for x in spec.model.layers] == [
        ("o/0/first/d", 6),
        ("o/0/second/d", 3),
        ("o/1/first/d", 6),
        ("o/1/second/d", 3),
    ]


@pytest.mark.parametrize(
    "uses,message",
    [
        ("- {type: dense_block}\n", "missing required argument 'units' for block 'dense_block'"),
        (
            "- {type: dense_block, units: 3, unit: 4}\n",
            "unknown argument 'unit' for block 'dense_block'",
        ),
        ("- {type: dense_block, units: 3, repeat: 0}\n", "repeat must be a positive integer"),
        ("- {type: dense_blok, units: 3}\n", "Did you mean 'dense_block'?"),
    ],
)
def test_block_use_errors(uses, message):
    with pytest.raises(SpecError) as err:
        load(spec_with_block(uses))
    assert message in str(err.value)


def test_block_that_uses_itself_is_an_error():
    data = {
        "blocks": {"loop": {"layers": [{"type": "loop"}]}},
        "model": {"inputs": {"x": {"shape": [2]}}, "layers": [{"type": "loop"}]},
    }
    with pytest.raises(SpecError, match="block 'loop' uses itself: loop -> loop"):
        load(data)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_extends_deep_merges_and_replaces_lists(tmp_path):
    write(
        tmp_path,
        "base.yaml",
        """\
        name: base
        seed: 3
        model:
          inputs: {x: {shape: [4]}}
          layers: [{type: Dense, units: 8}, {type: Dense, units: 2}]
        optimizer: {type: Adam, learning_rate: 0.01}
        """,
    )
    child = write(
        tmp_path,
        "child.yaml",
        """\
        extends: base.yaml
        name: child
        model:
          layers: [{type: Dense, units: 3}]
        optimizer: {learning_rate: 0.5}
        """,
    )
    spec = load(child)
    assert spec.name == "child" and spec.seed == 3
    assert [layer.units for layer in spec.model.layers] == [3]
    assert spec.optimizer.type == "Adam" and spec.optimizer.learning_rate == 0.5


def test_error_in_base_file_points_into_base(tmp_path):
    write(
        tmp_path,
        "base.yaml",
        """\
        model:
          inputs: {x: {shape: [4]}}
          layers: [{type: Dense, units: -8}]
        """,
    )
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: child\n")
    with pytest.raises(SpecError) as err:
        load(child)
    line = str(err.value)
    assert "base.yaml:3:33: model.layers[0].units: must be > 0" in line


def test_extends_cycle_and_missing_base(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(SpecError, match="`extends` cycle"):
        load(tmp_path / "a.yaml")
    write(tmp_path, "c.yaml", "extends: nope.yaml\n")
    with pytest.raises(SpecError, match="base spec not found"):
        load(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    "override,check",
    [
        ("model.layers[0].units=5", lambda s: s.model.layers[0].units == 5),
        ("model.layers.0.units=6", lambda s: s.model.layers[0].units == 6),
        ("model.layers.out.units=7", lambda s: s.model.layers[1].units == 7),
        ("optimizer={type: SGD, momentum: 0.9}", lambda s: s.optimizer.type == "SGD"),
        ("seed=42", lambda s: s.seed == 42),
        ("distribution.mesh.data=2", lambda s: s.distribution.mesh == {"data": 2}),
    ],
)
def test_set_overrides(override, check):
    data = {
        "model": {
            "inputs": {"x": {"shape": [4]}},
            "layers": [{"type": "Dense", "units": 8}, {"name": "out", "type": "Dense", "units": 2}],
        }
    }
    assert check(load(data, [override]))


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.layers[9].units=5", "index 9 is out of range"),
        ("model.layers.outt.units=5", "Did you mean 'out'?"),
        ("seed", "an override is `path.to.field=value`"),
        ("model.layers[0].units=big", "must be an integer"),
    ],
)
def test_bad_overrides(override, message):
    data = {
        "model": {
            "inputs": {"x": {"shape": [4]}},
            "layers": [{"type": "Dense", "units": 8}, {"name": "out", "type": "Dense", "units": 2}],
        }
    }
    with pytest.raises(SpecError) as err:
        load(data, [override])
    assert message in str(err.value)


def test_yaml_details(tmp_path):
    """1e-3 is a float (YAML 1.2), duplicate keys are errors, anchors work."""
    path = write(
        tmp_path,
        "s.yaml",
        """\
        optimizer: {type: Adam, learning_rate: 1e-3}
        model:
          inputs: {x: {shape: [4]}}
          layers:
            - &d {type: Dense, units: 4}
            - *d
        """,
    )
    spec = load(path)
    assert spec.optimizer.learning_rate == 0.001 and len(spec.model.layers) == 2
    dup = write(
        tmp_path,
        "d.yaml",
        "seed: 1\nseed: 2\nmodel: {inputs: {x: {shape: [1]}}, layers: [{type: Flatten}]}\n",
    )
    with pytest.raises(SpecError, match="d.yaml:2:1: seed: duplicate key 'seed'"):
        load(dup)
