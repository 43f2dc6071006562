"""Must-show 3 of issue 11: the digits CNN, trained briefly and exported to ONNX, run in
onnxruntime-node (`examples/web/check.mjs`) and in the static page under headless
Chromium (`examples/web/browser_check.mjs`, onnxruntime-web): the predictions on the
bundled samples equal Python onnxruntime's and `modelspec predict`'s (probabilities and
logits to 1e-5, same argmax). onnxruntime-web is stricter than Python's onnxruntime
(it rejects stale `value_info`), which is why the web runtime itself is in the test.

Needs Node >= 20, `npm ci --ignore-scripts` in examples/web and Chromium (`.ci/run`
installs them where it can); each part is skipped, saying what is missing, otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples/web"
SPEC = ROOT / "examples/digits/cnn.yaml"
SETS = ["train.epochs=3"]
ATOL = 1e-5
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _node_missing() -> str | None:
    """Why Node cannot run the checks, or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (apt-get install nodejs, Node >= 20)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < 20:
        return f"Node >= 20 is needed (playwright-core), found {version.strip() or 'unknown'}"
    return None


def _packages_missing(*names: str) -> str | None:
    absent = [n for n in names if not (WEB / "node_modules" / n / "package.json").exists()]
    if absent:
        return f"npm packages {absent} absent: run `npm ci --ignore-scripts` in examples/web"
    return None


NODE_SKIP = _node_missing() or _packages_missing("onnxruntime-node")
BROWSER_SKIP = (
    _node_missing()
    or _packages_missing("onnxruntime-web", "playwright-core")
    or (
        None
        if os.access(CHROMIUM, os.X_OK)
        else f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    )
)


def samples() -> list[dict]:
    return json.loads((WEB / "samples.json").read_text())


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The exported model and its reference logits on the samples, built once per test
    session even when pytest-xdist runs the two tests in different workers (they share
    the session's temporary root; a lock makes the second one wait and reuse it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "web-digits"
    with open(shared / "web-digits.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "reference.npz").exists():
            build_reference(out)
    reference = np.load(out / "reference.npz")
    return {"model": out / "digits.onnx", **{k: reference[k] for k in reference.files}}


def build_reference(out: Path) -> None:
    """Train the digits CNN 3 epochs, export it with the CLI, and write the logits of
    `modelspec predict` and of Python onnxruntime on the samples (reference.npz, last,
    so that its presence means the whole build finished)."""
    from typer.testing import CliRunner

    from modelspec.cli import app
    from modelspec.runtime.trainer import train

    out.mkdir(parents=True, exist_ok=True)
    run, model, pred = out / "run", out / "digits.onnx", out / "pred.npz"
    train(SPEC, run, SETS, progress=False)
    common = ["--run-dir", str(run), *[a for s in SETS for a in ("--set", s)]]
    invoke = CliRunner().invoke
    result = invoke(app, ["export", str(SPEC), "--format", "onnx", "-o", str(model), *common])
    assert result.exit_code == 0, result.output
    x = np.asarray([s["pixels"] for s in samples()], np.float32)
    np.savez(out / "samples.npz", pixels=x)
    args = ["predict", str(SPEC), "--input", str(out / "samples.npz"), "--output", str(pred)]
    result = invoke(app, [*args, *common])
    assert result.exit_code == 0, result.output
    (predicted,) = np.load(pred).values()
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"pixels": x})
    np.savez(out / "reference.npz", predict=predicted, onnxruntime=onnx_logits)


def assert_same(predictions: list[dict], exported: dict, runtime: str) -> None:
    """A JavaScript runtime's predictions equal both Python references."""
    assert [(p["index"], p["label"]) for p in predictions] == [
        (s["index"], s["label"]) for s in samples()
    ]
    logits = np.asarray([p["logits"] for p in predictions])
    probabilities = np.asarray([p["probabilities"] for p in predictions])
    classes = set(np.argmax(exported["predict"], -1))
    assert len(classes) >= 5, f"trained too little for argmax to tell much: {classes}"
    for name in ("predict", "onnxruntime"):
        want = exported[name]
        np.testing.assert_allclose(logits, want, atol=ATOL, err_msg=f"{runtime} logits vs {name}")
        np.testing.assert_allclose(
            probabilities, softmax(want), atol=ATOL, err_msg=f"{runtime} vs {name}"
        )
        assert [p["predicted"] for p in predictions] == list(np.argmax(want, -1)), (
            f"{runtime} vs {name}"
        )
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)


def node(script: str, *args: Path) -> dict:
    result = subprocess.run(
        ["node", str(WEB / script), *map(str, args)], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def test_samples_are_sklearns_digits() -> None:
    """samples.json is exactly what make_samples.py writes from scikit-learn's digits."""
    sys.path.insert(0, str(WEB))
    try:
        import make_samples
    finally:
        sys.path.remove(str(WEB))
    assert samples() == make_samples.samples()
    assert sorted(s["label"] for s in samples()) == list(range(10))


@pytest.mark.skipif(NODE_SKIP is not None, reason=str(NODE_SKIP))
def test_onnxruntime_node(exported: dict) -> None:
    assert_same(node("check.mjs", exported["model"])["predictions"], exported, "onnxruntime-node")


@pytest.mark.skipif(BROWSER_SKIP is not None, reason=str(BROWSER_SKIP))
def test_page_in_headless_chromium(exported: dict) -> None:
    """The page (onnxruntime-web) classifies every sample as Python does, shows those
    classes when the samples are clicked, classifies a mouse-drawn stroke downsampled to
    8x8 in 0-16, and requests nothing but its own files."""
    out = node("browser_check.mjs", exported["model"])
    assert_same(out["predictions"], exported, "onnxruntime-web")
    assert out["shown"] == [p["predicted"] for p in out["predictions"]]
    drawn = np.asarray(out["drawn"]["pixels"]).reshape(8, 8)
    assert drawn.min() >= 0 and drawn.max() <= 16 and drawn.sum() > 0
    assert drawn[:, [0, 1, 6, 7]].sum() == 0, f"a vertical stroke in the middle:\n{drawn}"
    assert 0 <= out["drawn"]["predicted"] <= 9
    assert out["external"] == []
