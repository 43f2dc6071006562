"""`--set` overrides read values with the spec's YAML rules."""

from __future__ import annotations

from modelspec import load


def test_set_reads_exponents_as_numbers():
    spec = load(
        {
            "model": {"inputs": {"x": {"shape": [2]}}, "layers": [{"type": "Flatten"}]},
            "optimizer": {"type": "Adam"},
        },
        ["optimizer.learning_rate=1e-3"],
    )
    assert spec.optimizer.learning_rate == 0.001
