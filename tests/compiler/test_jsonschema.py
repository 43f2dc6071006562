"""The JSON Schema from `modelspec schema` accepts every shipped spec and rejects
obvious mistakes, so editors flag what `modelspec check` would."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from modelspec.cli import app
from tests.conftest import ROOT

SPECS = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("examples/**/*.yaml")])


@pytest.fixture(scope="module")
def schema():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(data)
    return data


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_specs_validate_against_json_schema(schema, path):
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_schema_has_field_descriptions(schema):
    dense = schema["$defs"]["Dense"]["properties"]["units"]
    assert "output space" in dense["description"]
    assert "description" in schema["properties"]["seed"]


@pytest.mark.parametrize(
    "bad",
    [
        {"model": {"inputs": {"x": {"shape": [4]}}, "layers": [{"type": "Dense", "unit": 3}]}},
        {"model": {"inputs": {"x": {"shape": [4]}}, "layers": [{"type": "Dense", "units": 0}]}},
        {
            "model": {"inputs": {"x": {"shape": [4]}}, "layers": [{"type": "Dense", "units": 3}]},
            "optimiser": {"type": "Adam"},
        },
    ],
)
def test_json_schema_rejects_mistakes(schema, bad):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_schema_written_to_file(tmp_path):
    out = tmp_path / "s.json"
    assert CliRunner().invoke(app, ["schema", "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["title"] == "modelspec"
