"""The `modelspec` command's own output (the commands' effects are tested with the
modules they drive): `check`'s one-line report per spec."""

from __future__ import annotations

from typer.testing import CliRunner

from modelspec.cli import app

STATES = """\
modelspec: 1
name: states
model:
  inputs:
    x: {shape: [6, 3]}
  layers:
    - {name: enc, type: LSTM, units: 4, return_state: true}
    - {name: proj, type: Dense, units: 2, inputs: enc.1}
  outputs: %s
"""


def test_check_line_names_every_output_also_single_tensors_of_a_multi_output_layer(tmp_path):
    """`enc.0` has no summary row of its own (the row is `enc`): the line must still
    list it, in the order of `outputs`, with its own shape."""
    spec = tmp_path / "s.yaml"
    spec.write_text(STATES % "[proj, enc.0]")
    result = CliRunner().invoke(app, ["check", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("params -> proj (None, 2), enc.0 (None, 4)\n"), result.stdout

    spec.write_text(STATES % "[enc]")  # the plain name: all three tensors
    result = CliRunner().invoke(app, ["check", str(spec)])
    assert result.exit_code == 0, result.output
    assert "-> enc.0 (None, 4), enc.1 (None, 4), enc.2 (None, 4)\n" in result.stdout
