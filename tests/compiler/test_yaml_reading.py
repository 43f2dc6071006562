"""Reading YAML and JSON text: merge keys, recursive aliases, encodings, tabs in JSON."""

from __future__ import annotations

import textwrap

import pytest

from modelspec import SpecError, load


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


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
