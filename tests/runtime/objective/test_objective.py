"""`loss:`, `loss_weights:` and `metrics:` keys against the model's outputs: a key that
names no output is a positioned error when the spec is loaded (so `check` refuses it,
not only `train`), never silently ignored."""

from __future__ import annotations

import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.runtime.objective.objective import build_objective

SPEC = """\
modelspec: 1
name: two
model:
  inputs:
    x: {shape: [6, 3]}
  layers:
    - {name: enc, type: LSTM, units: 4, return_state: true}
    - {name: proj, type: Dense, units: 2, inputs: enc.1}
  outputs: [enc.0, proj]
loss: %s
loss_weights: %s
"""


def _errors(tmp_path, loss: str, weights: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC % (loss, weights))
    with pytest.raises(SpecError) as info:
        load(path)
    return [d.format().replace(str(tmp_path) + "/", "") for d in info.value.diagnostics]


def test_loss_weights_key_that_is_no_output_is_an_error(tmp_path):
    """A typo in `loss_weights` used to leave that output at weight 1 without a word."""
    assert _errors(tmp_path, "mse", "{enc.0: 1.0, prj: 0.5}") == [
        "s.yaml:11:28: loss_weights.prj: 'prj' is not a model output. Received: 'prj'. "
        "Did you mean 'proj'?"
    ]


def test_loss_and_loss_weights_keys_are_reported_together(tmp_path):
    assert _errors(tmp_path, "{enc.1: mse, proj: mae}", "{enc.2: 2.0}") == [
        "s.yaml:10:8: loss.enc.1: 'enc.1' is not a model output. Received: 'enc.1'. "
        "Did you mean 'enc.0'?",
        "s.yaml:11:16: loss_weights.enc.2: 'enc.2' is not a model output. Received: 'enc.2'. "
        "Did you mean 'enc.0'?",
    ]


def test_loss_weights_of_outputs_are_used(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SPEC % ("{enc.0: mse, proj: mae}", "{proj: 0.25}"))
    objective = build_objective(load(path))
    assert objective.weights == {"enc.0": 1.0, "proj": 0.25}


def test_metrics_key_without_a_loss_is_refused_by_check(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SPEC % ("{proj: mae}", "{}") + "metrics: {enc.0: [mae]}\n")
    with pytest.raises(SpecError) as info:
        load(path)
    (diag,) = info.value.diagnostics
    assert diag.format().replace(str(tmp_path) + "/", "") == (
        "s.yaml:12:11: metrics.enc.0: 'enc.0' is not a model output with a loss. "
        "Received: 'enc.0'. Outputs with a loss: proj."
    )
