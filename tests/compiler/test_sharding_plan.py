"""The pure sharding plan's command-line mesh parsing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.sharding.plan import parse_mesh


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
