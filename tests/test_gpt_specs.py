"""The GPT specs: gpt2_small.yaml has GPT-2 small's parameters plus its untied head, and
gpt_tiny.yaml trains on the bundled byte corpus (validation perplexity falls)."""

from __future__ import annotations

import json
import math

import numpy as np
from typer.testing import CliRunner

import modelspec
from modelspec.cli import app
from tests.conftest import ROOT

GPT2_SMALL = 124_439_808
"""GPT-2 small's parameter count (tied embeddings), as Hugging Face counts it."""


def gpt2_params(vocab=50257, ctx=1024, d=768, layers=12, mlp=3072) -> int:
    block = 2 * 2 * d + 4 * (d * d + d) + (d * mlp + mlp) + (mlp * d + d)
    return vocab * d + ctx * d + layers * block + 2 * d


def test_gpt2_small_has_gpt2_parameters_plus_an_untied_head():
    result = CliRunner().invoke(
        app, ["summary", "--format", "json", str(ROOT / "specs/gpt2_small.yaml")]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    head = 768 * 50257 + 50257
    assert gpt2_params() == GPT2_SMALL
    assert info["total_params"] == GPT2_SMALL + head == 163_087_441 == info["trainable_params"]
    text = (ROOT / "specs/gpt2_small.yaml").read_text()
    assert "163,087,441" in text and "124,439,808" in text  # the comment states the count


def test_gpt_tiny_trains_and_validation_perplexity_falls(tmp_path):
    tokens = np.load(ROOT / "specs/data/fortunes_bytes.npy")
    small = tmp_path / "tokens.npy"
    np.save(small, tokens[:20_000])  # 312 windows: 9 steps keep the test short
    common = ["train.epochs=1", f"data.train.path={small}"]

    def val_perplexity(*overrides: str) -> dict:
        history = modelspec.train(
            ROOT / "specs/gpt_tiny.yaml",
            tmp_path / f"run{len(overrides)}",
            [*common, *overrides],
            progress=False,
        )
        return history.epochs[-1]

    untrained = val_perplexity("optimizer.learning_rate=0.0")
    trained = val_perplexity()
    for logs in (untrained, trained):  # no token is masked: perplexity = exp(loss)
        assert math.isclose(logs["val_perplexity"], math.exp(logs["val_loss"]), rel_tol=1e-4)
    assert trained["val_perplexity"] < 0.5 * untrained["val_perplexity"]
