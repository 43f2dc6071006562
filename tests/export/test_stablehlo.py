"""StableHLO export (issue 11, must-show 4): a model trained for one epoch, exported with
`modelspec export --format stablehlo`, reloaded in a fresh process that imports only JAX
and `load_stablehlo`, gives `modelspec predict`'s outputs for two batch sizes (the batch
dimension is symbolic). Models: the iris MLP (BatchNormalization), a small CNN with
BatchNormalization and Dropout, and the fortunes text classifier (a host layer: the
program takes TextVectorization's output, its vocabulary is written beside it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.infer import input_types
from modelspec.runtime.data.predict_text import read_text_inputs
from modelspec.runtime.export.stablehlo import load_stablehlo
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train
from tests.conftest import ROOT

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
BATCHES = (5, 37)

CNN = """\
name: tiny-cnn
seed: 1
data:
  train: {type: npz, path: digits.npz, targets: {digit: y}}
  batch_size: 32
model:
  inputs: {pixels: {shape: [64]}}
  layers:
    - {type: Rescaling, scale: 0.0625}
    - {type: Reshape, target_shape: [8, 8, 1]}
    - {type: Conv2D, filters: 8, kernel_size: 3, padding: same}
    - {type: BatchNormalization}
    - {type: Activation, activation: relu}
    - {type: MaxPooling2D, pool_size: 2}
    - {type: Flatten}
    - {type: Dropout, rate: 0.3}
    - {name: digit, type: Dense, units: 10}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
optimizer: {type: Adam, learning_rate: 0.01}
train: {epochs: 1}
"""

# Runs in a fresh interpreter: what a serving process would import, and nothing more.
FRESH = """\
import json, sys
import numpy as np
from modelspec.runtime.export.stablehlo import load_stablehlo
run = load_stablehlo(sys.argv[1])
for source in sys.argv[2:]:
    with np.load(source) as inputs:
        outputs = run(dict(inputs))
    np.savez(source.replace(".npz", ".out.npz"), **outputs)
heavy = ("flax", "optax", "orbax", "keras", "modelspec.compiler", "modelspec.schema")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
"""


def write_cnn(tmp: Path) -> Path:
    """The CNN spec with 96 random 8x8 'digits' (one epoch is 3 steps)."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 17, size=(96, 64)).astype("float32")
    np.savez(tmp / "digits.npz", pixels=x, y=rng.integers(0, 10, size=96).astype("int32"))
    (tmp / "cnn.yaml").write_text(CNN)
    return tmp / "cnn.yaml"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_fresh(export_dir: Path, inputs: list[Path]) -> list[dict[str, np.ndarray]]:
    """Load the export in a new process, run it on each .npz; the outputs."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(export_dir), *map(str, inputs)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []  # JAX alone: no Flax, no model code
    out = []
    for path in inputs:
        with np.load(str(path).replace(".npz", ".out.npz")) as stored:
            out.append(dict(stored))
    return out


def trained(tmp: Path, spec: Path, *overrides: str) -> Path:
    run = tmp / "run"
    train(spec, run, list(overrides), progress=False)
    return run


def export_and_compare(tmp: Path, spec: Path, run: Path, inputs: dict[str, np.ndarray]) -> Path:
    """Export, predict `inputs` once, reload the export in a fresh process and run it on
    the first rows at each of BATCHES: the same outputs."""
    exported = invoke("export", spec, "--run-dir", run, "--format", "stablehlo")
    assert exported.exit_code == 0, exported.output
    folder = run / "export" / "model.stablehlo"
    assert f"Wrote {folder / 'program.bin'}" in exported.stdout
    everything = tmp / "all.npz"
    np.savez(everything, **inputs)
    predicted = invoke(
        "predict", spec, "--run-dir", run, "--input", everything, "--output", tmp / "pred.npz"
    )
    assert predicted.exit_code == 0, predicted.output
    with np.load(tmp / "pred.npz") as stored:
        expected = dict(stored)
    paths = []
    for n in BATCHES:
        paths.append(tmp / f"in{n}.npz")
        np.savez(paths[-1], **{k: v[:n] for k, v in inputs.items()})
    for n, got in zip(BATCHES, run_fresh(folder, paths), strict=True):
        assert got.keys() == expected.keys()
        for name, want in expected.items():
            assert got[name].shape == want[:n].shape and got[name].dtype == want.dtype
            np.testing.assert_allclose(got[name], want[:n], atol=1e-6, rtol=0)
    return folder


def test_iris_mlp_reloads_in_a_fresh_process(tmp_path):
    shutil.copytree(ROOT / "examples" / "iris", tmp_path / "iris")
    spec = tmp_path / "iris" / "mlp.yaml"
    run = trained(tmp_path, spec, "train.epochs=1")
    rng = np.random.default_rng(0)
    inputs = {"features": rng.normal(5, 2, size=(max(BATCHES), 4)).astype("float32")}
    folder = export_and_compare(tmp_path, spec, run, inputs)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["inputs"] == [{"name": "features", "shape": [None, 4], "dtype": "float32"}]
    assert manifest["outputs"] == [{"name": "species", "shape": [None, 3], "dtype": "float32"}]
    assert "batch_stats/layers/batch_normalization/moving_mean" in manifest["weight_names"]


def test_cnn_with_batch_norm_and_dropout_reloads_in_a_fresh_process(tmp_path):
    spec = write_cnn(tmp_path)
    run = trained(tmp_path, spec)
    rng = np.random.default_rng(1)
    inputs = {"pixels": rng.integers(0, 17, size=(max(BATCHES), 64)).astype("float32")}
    export_and_compare(tmp_path, spec, run, inputs)


def test_text_model_exports_from_the_host_layers_outputs(tmp_path):
    """The program takes TextVectorization's output (named after the layer); its
    vocabulary is preprocessing.json, the same state `predict` encodes with."""
    shutil.copytree(ROOT / "examples" / "fortunes", tmp_path / "fortunes")
    spec = tmp_path / "fortunes" / "classifier.yaml"
    run = trained(tmp_path, spec, "train.epochs=1")
    exported = invoke("export", spec, "--run-dir", run, "--format", "stablehlo")
    assert exported.exit_code == 0, exported.output
    folder = run / "export" / "model.stablehlo"
    manifest = json.loads((folder / "manifest.json").read_text())
    layer = manifest["host_layers"][0]
    assert layer["type"] == "TextVectorization" and layer["reads"] == "text"
    assert [i["name"] for i in manifest["inputs"]] == [layer["name"]]
    assert manifest["preprocessing"] == "preprocessing.json"
    vocabulary = json.loads((folder / "preprocessing.json").read_text())
    assert vocabulary == json.loads((run / "preprocessing.json").read_text())

    texts = tmp_path / "fortunes" / "data" / "law"
    out = tmp_path / "pred.npz"
    predicted = invoke("predict", spec, "--run-dir", run, "--input", texts, "--output", out)
    assert predicted.exit_code == 0, predicted.output
    session = open_session(spec, [], data=False)
    session.host.load(vocabulary)  # the exported state, not the checkpoint's
    raw = read_text_inputs([texts], input_types(session.spec), session.spec.data)
    encoded = session.host.encode_inputs(raw)
    got = load_stablehlo(folder)(encoded)
    with np.load(out) as want:
        np.testing.assert_allclose(got["dense"], want["dense"], atol=1e-6, rtol=0)


def test_loader_refuses_wrong_inputs_plainly(tmp_path):
    spec = write_cnn(tmp_path)
    done = invoke("export", spec, "--untrained", "--format", "stablehlo", "-o", tmp_path / "e")
    assert done.exit_code == 0, done.output
    run = load_stablehlo(tmp_path / "e")
    assert run({"pixels": np.zeros((2, 64), "float64")})["digit"].shape == (2, 10)
    with pytest.raises(ValueError, match=r"takes the inputs \['pixels'\]; missing \['pixels'\]"):
        run({"x": np.zeros((2, 64))})
    with pytest.raises(ValueError, match=r"'pixels' must have shape \('batch', 64\)"):
        run({"pixels": np.zeros((2, 63), "float32")})
    with pytest.raises(TypeError, match="must be float32, not complex64"):
        run({"pixels": np.zeros((2, 64), "complex64")})
    with pytest.raises(ValueError, match="no modelspec StableHLO export"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "manifest.json").write_text("{}")
        load_stablehlo(tmp_path / "other")
