"""`modelspec export`'s choices and refusals: which checkpoint (newest, `--step`, none with
`--untrained`), and every problem a clear message with exit code 2, never a traceback
(no checkpoint, an unknown step, a damaged checkpoint, a changed model, an unknown
format, a missing optional package, an unwritable output). Tiny model (4 -> 8 -> 2)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.runtime.export.stablehlo import load_stablehlo
from modelspec.runtime.session import open_session
from modelspec.runtime.steps import model_state
from modelspec.runtime.trainer import train
from tests.runtime.test_run_integrity import damage

SPEC = """\
name: tiny-export
seed: 3
data:
  train: {type: npz, path: d.npz, targets: {out: y}}
  batch_size: 16
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {name: h, type: Dense, units: 8, activation: relu}
    - {name: out, type: Dense, units: 2}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
optimizer: {type: SGD, learning_rate: 0.1}
train: {epochs: 2}
checkpoint: {save_every_steps: 3, max_to_keep: null}
"""
X = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def steps_of(run: Path) -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The spec, its data, and one finished run (checkpoints at steps 3, 4, 6, 8)."""
    root = tmp_path_factory.mktemp("export")
    x = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
    np.savez(root / "d.npz", x=x, y=(x[:, 0] > 0).astype("int32"))
    (root / "spec.yaml").write_text(SPEC)
    train(root / "spec.yaml", root / "run", progress=False)
    return root


def exported_outputs(folder: Path) -> np.ndarray:
    return load_stablehlo(folder)({"x": X})["out"]


def test_exports_the_newest_or_the_chosen_step(project, tmp_path):
    run = project / "run"
    steps = steps_of(run)
    newest = invoke("export", project / "spec.yaml", "--run-dir", run, "--format", "stablehlo",
                    "-o", tmp_path / "new")  # fmt: skip
    assert newest.exit_code == 0, newest.output
    assert f"Using checkpoint step {steps[-1]} of {run}" in newest.stderr
    written = [f"Wrote {tmp_path / 'new' / n}" for n in ("program.bin", "weights.npz")]
    assert all(line in newest.stdout for line in written)
    first = invoke("export", project / "spec.yaml", "--run-dir", run, "--format", "stablehlo",
                   "-o", tmp_path / "first", "--step", steps[0])  # fmt: skip
    assert first.exit_code == 0, first.output
    assert f"Using checkpoint step {steps[0]} of {run}" in first.stderr
    np.savez(tmp_path / "x.npz", x=X)
    predicted = invoke("predict", project / "spec.yaml", "--run-dir", run,
                       "--input", tmp_path / "x.npz", "--output", tmp_path / "y.npz")  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    want = np.load(tmp_path / "y.npz")["out"]
    np.testing.assert_allclose(exported_outputs(tmp_path / "new"), want, atol=1e-6, rtol=0)
    assert np.abs(exported_outputs(tmp_path / "first") - want).max() > 1e-3


def test_untrained_needs_no_run_and_holds_the_seeds_weights(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.yaml"
    shutil.copy(project / "spec.yaml", spec)
    result = invoke("export", spec, "--untrained", "--format", "stablehlo")
    assert result.exit_code == 0, result.output
    assert "Exporting untrained weights (initialized from seed 3)" in result.stderr
    folder = Path("runs") / "tiny-export" / "export" / "model.stablehlo"
    assert f"Wrote {folder / 'manifest.json'}" in result.stdout
    assert not (Path("runs") / "tiny-export" / "checkpoints").exists()  # nothing restored
    session = open_session(spec, [], data=False)
    want, _ = model_state(session.graphdef, session.state).apply({"x": X}, training=False)
    np.testing.assert_allclose(exported_outputs(folder), jax.device_get(want["out"]), atol=1e-6)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"] == "tiny-export" and manifest["jax_version"] == jax.__version__


def test_a_run_without_checkpoint_is_refused(project, tmp_path):
    result = invoke("export", project / "spec.yaml", "--run-dir", tmp_path / "empty",
                    "--format", "stablehlo")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--run-dir: no checkpoint found in this run directory" in result.stderr
    assert "Train first" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "empty" / "export").exists()


def test_an_unknown_step_is_refused_listing_the_steps(project):
    run = project / "run"
    result = invoke("export", project / "spec.yaml", "--run-dir", run, "--format", "stablehlo",
                    "--step", 999)  # fmt: skip
    assert result.exit_code == 2, result.output
    listed = ", ".join(map(str, steps_of(run)))
    assert f"{run}: --step: no checkpoint step 999 in this run directory" in result.stderr
    assert f"Checkpoint steps there: {listed}." in result.stderr


@pytest.mark.parametrize("kind", ["bit_flips", "no_meta_dir", "step_dir_is_a_file"])
def test_a_damaged_checkpoint_is_refused(project, tmp_path, kind):
    run = tmp_path / "run"
    shutil.copytree(project / "run", run)
    *_, previous, latest = steps_of(run)
    damage(kind, run / "checkpoints" / str(latest))
    args = ["export", project / "spec.yaml", "--run-dir", run, "--format", "stablehlo"]
    newest = invoke(*args)
    assert newest.exit_code == 2, newest.output
    assert f"checkpoint step {latest} in {run} is damaged" in newest.stderr
    assert f"to use step {previous}" in newest.stderr and "Traceback" not in newest.output
    chosen = invoke(*args, "--step", latest)
    assert chosen.exit_code == 2, chosen.output
    assert f"checkpoint step {latest} in {run} is damaged" in chosen.stderr
    assert "Choose another --step: " in chosen.stderr and str(previous) in chosen.stderr
    assert not (run / "export").exists()


def test_a_changed_model_is_refused_unless_allowed(project, tmp_path):
    args = ["export", project / "spec.yaml", "--run-dir", project / "run", "--format",
            "stablehlo", "-o", tmp_path / "e", "--set", "model.layers.h.activation=tanh"]  # fmt: skip
    refused = invoke(*args)
    assert refused.exit_code == 2, refused.output
    assert "model.layers[0].activation: trained with 'relu', now 'tanh'" in refused.stderr
    allowed = invoke(*args, "--allow-spec-change")
    assert allowed.exit_code == 0 and "Warning: the model differs" in allowed.stderr


def test_argument_errors(project, tmp_path):
    spec = project / "spec.yaml"
    bogus = invoke("export", spec, "--untrained", "--format", "stablehlo2")
    assert bogus.exit_code == 2
    assert "--format: unknown export format. Received: 'stablehlo2'." in bogus.stderr
    assert "Did you mean 'stablehlo'?" in bogus.stderr
    both = invoke("export", spec, "--untrained", "--step", 3, "--format", "stablehlo")
    assert both.exit_code == 2 and "--step chooses a checkpoint" in both.stderr
    (tmp_path / "file").write_text("x")
    blocked = invoke("export", spec, "--untrained", "--format", "stablehlo", "-o",
                     tmp_path / "file")  # fmt: skip
    assert blocked.exit_code == 2, blocked.output
    assert f"{tmp_path / 'file'}: --output: cannot write the stablehlo export" in blocked.stderr
    assert "a StableHLO export is a folder" in blocked.stderr


def test_a_missing_optional_package_names_the_extra(project, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails
    monkeypatch.delitem(sys.modules, "modelspec.runtime.export.onnx_export", raising=False)
    result = invoke("export", project / "spec.yaml", "--untrained", "--format", "onnx",
                    "-o", tmp_path / "m.onnx")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "the onnx export needs the Python package 'onnx', which is not installed" in (
        result.stderr
    )
    assert "pip install 'modelspec[export]'" in result.stderr and "Traceback" not in result.output


def test_help_names_the_formats():
    result = invoke("export", "--help")
    assert result.exit_code == 0
    for word in ("onnx", "stablehlo", "keras", "--step", "--untrained", "--allow-spec-change"):
        assert word in result.stdout
