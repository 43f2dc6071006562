"""Recurrent/attention behaviour the per-layer conformance harness cannot see.

- Training-mode dropout inside a jitted pure forward pass (the reason the builders avoid
  `nnx.RNN`): deterministic for one rng state, different for the next.
- Keras's dropout semantics for RNNs (one mask per sequence; per-gate masks once
  `recurrent_dropout > 0`), checked exactly by injecting the same masks into both sides.
- Causal attention over rank-4 inputs (Keras itself cannot, so: flattened positions).
- The shipped text-classifier spec compiles and runs.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.compiler.layers import recurrent
from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, apply, build, split
from tests.conformance.harness import Case, _assign, keras_layer, spec_for


def _lstm_spec(**lstm):
    return {
        "modelspec": 1,
        "name": "lstm-dropout",
        "model": {
            "inputs": {"x": {"shape": [7, 4], "dtype": "float32"}},
            "layers": [
                {
                    "name": "rnn",
                    "type": "LSTM",
                    "units": 5,
                    "return_sequences": True,
                    **lstm,
                    "inputs": "x",
                },
                {"name": "out", "type": "Dense", "units": 2},
            ],
            "outputs": ["out"],
        },
    }


def test_lstm_dropout_forward_under_jit():
    state = split(build(_lstm_spec(dropout=0.3, recurrent_dropout=0.3), seed=0))
    forward = jax.jit(functools.partial(apply, state.graphdef, training=True))
    x = {"x": jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 4)), jnp.float32)}

    out1, _, rng1 = forward(state.params, state.batch_stats, state.rng, state.frozen, x)
    out2, _, _ = forward(state.params, state.batch_stats, state.rng, state.frozen, x)
    out3, _, _ = forward(state.params, state.batch_stats, rng1, state.frozen, x)

    assert out1["out"].shape == (2, 7, 2)
    np.testing.assert_array_equal(np.asarray(out1["out"]), np.asarray(out2["out"]))
    assert not np.allclose(np.asarray(out1["out"]), np.asarray(out3["out"]))

    infer = jax.jit(functools.partial(apply, state.graphdef, training=False))
    a, _, _ = infer(state.params, state.batch_stats, state.rng, state.frozen, x)
    b, _, _ = infer(state.params, state.batch_stats, rng1, state.frozen, x)
    np.testing.assert_array_equal(np.asarray(a["out"]), np.asarray(b["out"]))


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "LSTM", "units": 3, "dropout": 0.3, "return_sequences": True},
        {
            "type": "LSTM",
            "units": 3,
            "dropout": 0.3,
            "recurrent_dropout": 0.4,
            "go_backwards": True,
        },
        {
            "type": "GRU",
            "units": 3,
            "dropout": 0.3,
            "recurrent_dropout": 0.4,
            "return_sequences": True,
        },
        {"type": "GRU", "units": 3, "dropout": 0.2, "recurrent_dropout": 0.4, "reset_after": False},
    ],
    ids=lambda layer: "-".join(f"{k}={v}" for k, v in layer.items() if k != "units"),
)
def test_rnn_training_dropout_matches_keras_with_same_masks(layer, monkeypatch):
    """Keras caches its masks on the cell (`_dropout_mask`, `_recurrent_dropout_mask`)
    and reuses a cached one, so the masks we draw can be handed to Keras verbatim."""
    case = Case("masks", layer, {"x": ((6, 4), "float32")})
    spec = load(spec_for(case))
    info = load(spec).shapes["under_test"]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    klayer = keras_layer(layer)
    klayer(x)
    kvars = {v.path: v for v in klayer.weights}
    values = {}
    for p in info.params:
        values[p.path] = rng.normal(size=p.shape).astype("float32")
        (match,) = [k for k in kvars if k.endswith("/" + p.path)]
        kvars[match].assign(values[p.path])
    state = _assign(split(CompiledModel(spec, seed=0)), values)

    drawn = {}

    def fixed_masks(rngs, rate, count, shape, dtype):
        if not 0.0 < rate < 1.0:
            return None
        mask = (rng.random((count, *shape)) > rate).astype("float32") / (1.0 - rate)
        drawn["input" if shape[-1] == 4 else "state"] = mask
        return jnp.asarray(mask)

    monkeypatch.setattr(recurrent, "_masks", fixed_masks)
    ours, _ = state.apply({"x": jnp.asarray(x)}, training=True)

    per_gate = layer.get("recurrent_dropout", 0.0) > 0.0
    if "input" in drawn:
        mask = drawn["input"]
        klayer.cell._dropout_mask = [jnp.asarray(m) for m in mask] if per_gate else mask[0]
    if "state" in drawn:
        klayer.cell._recurrent_dropout_mask = [jnp.asarray(m) for m in drawn["state"]]
    ref = klayer(x, training=True)
    np.testing.assert_allclose(
        np.asarray(ours["under_test"]), np.asarray(ref), atol=1e-5, rtol=1e-5
    )


def _mha_model(shape, seed=0):
    spec = {
        "modelspec": 1,
        "name": "causal",
        "model": {
            "inputs": {"x": {"shape": list(shape), "dtype": "float32"}},
            "layers": [
                {
                    "name": "attn",
                    "type": "MultiHeadAttention",
                    "num_heads": 2,
                    "key_dim": 3,
                    "use_causal_mask": True,
                    "inputs": "x",
                }
            ],
            "outputs": ["attn"],
        },
    }
    return build(spec, seed=seed)


def test_causal_rank4_attends_over_flattened_positions():
    """Keras raises for `use_causal_mask` on rank-4 inputs; ours masks the row-major
    flattened positions, i.e. equals rank-3 causal attention on the flattened input."""
    rank4, rank3 = _mha_model((2, 3, 4)), _mha_model((6, 4))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2, 3, 4)), jnp.float32)
    out4 = rank4({"x": x})["attn"]
    out3 = rank3({"x": x.reshape(2, 6, 4)})["attn"]
    assert out4.shape == (2, 2, 3, 4)
    np.testing.assert_allclose(np.asarray(out4).reshape(2, 6, 4), np.asarray(out3), atol=1e-6)
    # Causality: changing the last position leaves every earlier output unchanged.
    changed = rank4({"x": x.at[:, -1, -1].add(5.0)})["attn"]
    np.testing.assert_allclose(
        np.asarray(changed)[:, :, :-1].reshape(2, -1),
        np.asarray(out4)[:, :, :-1].reshape(2, -1),
        atol=1e-6,
    )
    np.testing.assert_allclose(np.asarray(changed)[:, 0], np.asarray(out4)[:, 0], atol=1e-6)


def test_text_classifier_spec_builds(root):
    model = build(str(root / "specs" / "text_classifier.yaml"), seed=0)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 1000, (3, 32)), jnp.int32)
    out = model({"tokens": tokens})
    assert set(out) == {"logits"}
    assert out["logits"].shape == (3, 2)
    assert bool(jnp.all(jnp.isfinite(out["logits"])))
