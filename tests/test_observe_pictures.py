"""`modelspec plot` and `modelspec graph`: the pictures are opened and checked (size,
not blank, the runs' colours; one SVG node per layer and the right edges), with and
without graphviz's `dot`; and `train` leaves curves.png in its run directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from modelspec.cli import app

ROOT = Path(__file__).resolve().parents[1]
RESNET = ROOT / "specs" / "resnet_small.yaml"
SVG = "{http://www.w3.org/2000/svg}"
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)
"""matplotlib's first two cycle colours: the first and second run."""


def _run_dir(path: Path, epochs: int, scale: float) -> Path:
    path.mkdir(parents=True)
    lines = []
    for e in range(1, epochs + 1):
        record = {
            "epoch": e,
            "step": 10 * e,
            "loss": scale / e,
            "accuracy": 1 - scale / (e + 1),
            "val_loss": scale / e + 0.1,
            "val_accuracy": 1 - scale / (e + 2),
            "learning_rate": 0.01,
        }
        lines.append(json.dumps(record))
    (path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"epoch": 9, "lo')  # cut short
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def _has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol).any())


def _not_blank(pixels: np.ndarray, colours: int = 3) -> None:
    assert pixels.var() > 0
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= colours


def test_plot_overlays_runs_one_panel_per_quantity(tmp_path):
    runs = [_run_dir(tmp_path / "a", 5, 1.0), _run_dir(tmp_path / "b", 3, 2.0)]
    out = tmp_path / "pics" / "curves.png"
    result = CliRunner().invoke(app, ["plot", *map(str, runs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.stdout
    pixels = _pixels(out)
    # loss, accuracy, learning_rate: 3 panels of 5 x 3.5 inches in one row, at 100 dpi
    assert pixels.shape == (350, 1500, 3)
    _not_blank(pixels, colours=20)
    assert _has_colour(pixels, BLUE) and _has_colour(pixels, ORANGE)


def test_plot_panels_and_labels():
    from modelspec.observe.curves import RunCurves, labels_for, panels

    run = RunCurves("r", [{"epoch": 1, "step": 3, "learning_rate": 0.1, "val_auc": 0.5, "loss": 1}])
    assert panels([run]) == ["loss", "auc", "learning_rate"]
    assert labels_for([Path("x/run"), Path("y/run"), Path("z/other")]) == [
        "x/run",
        "y/run",
        "other",
    ]


def test_plot_refuses_a_folder_without_metrics(tmp_path):
    result = CliRunner().invoke(app, ["plot", str(tmp_path), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert "no metrics.jsonl" in result.output
    assert not (tmp_path / "c.png").exists()


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    run = _run_dir(tmp_path / "a", 2, 1.0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = CliRunner().invoke(app, ["plot", str(run), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert "pip install 'modelspec[plot]'" in result.output

    from modelspec.observe.curves import write_run_curves

    assert write_run_curves(run) is None  # train skips the picture silently
    assert not (run / "curves.png").exists()


def test_train_writes_curves_png(tmp_path):
    from modelspec.runtime.trainer import train

    run = tmp_path / "iris"
    train(ROOT / "examples/iris/mlp.yaml", run, ["train.epochs=2"], progress=False)
    pixels = _pixels(run / "curves.png")
    _not_blank(pixels, colours=20)
    assert _has_colour(pixels, BLUE)


def _svg_graph(path: Path) -> tuple[list[str], list[str]]:
    """(node titles, edge titles) of an SVG written by graphviz or the built-in layout."""
    root = ET.parse(path).getroot()
    titles = {"node": [], "edge": []}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class")
        if kind in titles:
            titles[kind].append(g.find(f"{SVG}title").text)
    return titles["node"], titles["edge"]


# resnet_small: collapsed, the input, rescaling, conv2d, the `stages` use of `residual`
# (6 repetitions x 8 layers), pooling, dropout, logits: 7 nodes in a chain of 6 edges.
# Expanded: 1 input + 53 layers; edges = distinct inputs per layer: 2 before the block,
# 9 per repetition (the Add takes two), 3 after: 2 + 54 + 3 = 59.
COLLAPSED = (7, 6)
EXPANDED = (54, 59)


@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_graph_svg_builtin_one_node_per_layer(tmp_path, expand):
    out = tmp_path / "model.svg"
    flag = "--expand-blocks" if expand else "--collapse-blocks"
    args = ["graph", str(RESNET), "-o", str(out), flag, "--renderer", "builtin"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    nodes, edges = _svg_graph(out)
    assert (len(nodes), len(edges)) == (EXPANDED if expand else COLLAPSED)
    assert len(set(nodes)) == len(nodes)
    text = out.read_text()
    if expand:
        assert "stages/5/conv_b" in nodes and "stages/0/sum" in nodes
        assert "stages/0/shortcut-&gt;stages/0/sum" in text
    else:
        assert "stages" in nodes and "conv2d->stages" in edges
        assert "block residual x6 (48 layers)" in text
        assert "(None, 8, 8, 64)" in text  # the block's output shape
        assert "180,704 params" in text


def test_graph_png_builtin_not_blank(tmp_path):
    out = tmp_path / "model.png"
    result = CliRunner().invoke(
        app, ["graph", str(RESNET), "-o", str(out), "--renderer", "builtin"]
    )
    assert result.exit_code == 0, result.output
    pixels = _pixels(out)
    assert pixels.shape[0] > pixels.shape[1] > 100  # a tall chain of boxes
    _not_blank(pixels)


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's `dot` is not on PATH")
@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_graph_through_graphviz(tmp_path, expand):
    flag = "--expand-blocks" if expand else "--collapse-blocks"
    for suffix in ("svg", "png"):
        out = tmp_path / f"model.{suffix}"
        args = ["graph", str(RESNET), "-o", str(out), flag, "--renderer", "graphviz"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    nodes, edges = _svg_graph(tmp_path / "model.svg")
    assert (len(nodes), len(edges)) == (EXPANDED if expand else COLLAPSED)
    _not_blank(_pixels(tmp_path / "model.png"))


def test_graph_refuses_other_formats_and_missing_dot(tmp_path, monkeypatch):
    result = CliRunner().invoke(app, ["graph", str(RESNET), "-o", str(tmp_path / "m.pdf")])
    assert result.exit_code == 2
    assert "must be .svg or .png" in result.output
    monkeypatch.setattr(shutil, "which", lambda name: None)
    args = ["graph", str(RESNET), "-o", str(tmp_path / "m.svg"), "--renderer", "graphviz"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "`dot` binary is not on PATH" in result.output
    args[-1] = "auto"  # falls back to the built-in layout
    assert CliRunner().invoke(app, args).exit_code == 0
    assert _svg_graph(tmp_path / "m.svg")[0][0] == "image"


def test_graph_imports_no_jax(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from modelspec.cli import app\n"
        f"r = CliRunner().invoke(app, ['graph', {str(RESNET)!r}, '-o', {str(tmp_path / 'g.svg')!r},"
        " '--renderer', 'builtin'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert not [m for m in sys.modules if m == 'jax' or m.startswith('jax.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
