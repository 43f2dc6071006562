"""Keras masks through the attention layers, against Keras 3 functional twins.

Attention and AdditiveAttention take `mask=[query_mask, value_mask]` (the value's mask
shifts the scores of masked keys by -1e9, the query's zeroes the output rows it hides);
GroupQueryAttention takes `query_mask=`/`value_mask=`/`key_mask=` and-ed with its
`attention_mask` (on both of Keras's softmax roads); every one's output keeps the
query's mask. Batches hold sequences of lengths 6, 2, 4 and 0 (a fully masked row).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from modelspec.errors import SpecError
from tests.compiler.test_masking import TOKENS, _error, assert_same, spec
from tests.keras_twin import copy_weights, keras_twin

EMB = {"type": "Embedding", "input_dim": 10, "output_dim": 8, "mask_zero": True}

SELF_ATTENTION = [
    {"type": "Attention"},
    {"type": "Attention", "use_scale": True, "score_mode": "concat"},
    {"type": "Attention", "use_causal_mask": True},
    {"type": "AdditiveAttention"},
    {"type": "AdditiveAttention", "use_scale": False, "use_causal_mask": True},
    {"type": "GroupQueryAttention", "head_dim": 4, "num_query_heads": 4, "num_key_value_heads": 2},
    {  # Keras's Softmax road (masked probabilities zeroed), not its fused attention
        "type": "GroupQueryAttention",
        "head_dim": 4,
        "num_query_heads": 2,
        "num_key_value_heads": 1,
        "dropout": 0.1,
    },
    {
        "type": "GroupQueryAttention",
        "head_dim": 4,
        "num_query_heads": 2,
        "num_key_value_heads": 2,
        "use_causal_mask": True,
    },
]


@pytest.mark.parametrize("layer", SELF_ATTENTION, ids=lambda d: "-".join(map(str, d.values())))
def test_self_attention_on_a_masked_sequence(layer):
    layers = [EMB, layer, {"type": "Dense", "units": 3}]
    ours, mask = assert_same(spec(layers), {"tokens": TOKENS}, masked=True)
    np.testing.assert_array_equal(mask, TOKENS != 0)


def _two_sequences(layer: dict, value_masked: bool = True, key: bool = False):
    """Cross-attention from `q` (a masked embedding of `tokens`) to `v` (masked or
    not), optionally with a separate masked key."""
    inputs = {
        "tokens": {"shape": [6], "dtype": "int32"},
        "other": {"shape": [5], "dtype": "int32"},
    }
    value = {**EMB, "mask_zero": value_masked}
    layers = [
        {**EMB, "name": "q", "inputs": "tokens"},
        {**value, "name": "v", "inputs": "other"},
    ]
    names = {"query": "q", "value": "v"}
    if key:
        layers.append({**EMB, "name": "k", "inputs": "other", "input_dim": 12})
        names["key"] = "k"
    layers.append({**layer, "name": "att", "inputs": names})
    other = np.array([[0, 0, 0, 0, 0], [7, 0, 0, 0, 0], [1, 2, 3, 4, 5], [2, 2, 0, 0, 0]])
    return spec(layers, inputs), {"tokens": TOKENS, "other": other.astype(np.int32)}


@pytest.mark.parametrize("value_masked", [True, False])
@pytest.mark.parametrize(
    "layer",
    [
        {"type": "Attention"},
        {"type": "AdditiveAttention"},
        {
            "type": "GroupQueryAttention",
            "head_dim": 2,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
        },
    ],
    ids=lambda d: d["type"],
)
def test_cross_attention_masks(layer, value_masked):
    spec_dict, x = _two_sequences(layer, value_masked)
    assert_same(spec_dict, x, masked=True)


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "Attention"},  # Keras ignores the key's mask (`mask[2]`)
        {
            "type": "GroupQueryAttention",
            "head_dim": 2,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
        },
    ],
    ids=lambda d: d["type"],
)
def test_masked_key(layer):
    spec_dict, x = _two_sequences(layer, value_masked=False, key=True)
    assert_same(spec_dict, x, masked=True)


def test_unmasked_query_gives_an_unmasked_output():
    inputs = {"tokens": {"shape": [6], "dtype": "int32"}, "q": {"shape": [3, 8]}}
    layers = [
        {**EMB, "name": "v", "inputs": "tokens"},
        {"type": "Attention", "inputs": {"query": "q", "value": "v"}},
    ]
    q = np.random.default_rng(2).normal(size=(4, 3, 8)).astype(np.float32)
    assert_same(spec(layers, inputs), {"tokens": TOKENS, "q": q}, masked=False)


@pytest.mark.parametrize("layer_type", ["MultiHeadAttention", "GroupQueryAttention"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_masked_inputs_with_an_attention_mask_tensor(layer_type, dropout):
    """The inputs' masks and-ed with a float `attention_mask` (nonzero = attend) that
    itself carries a Keras mask, which the layer does not take (no `attention_mask_mask`)."""
    inputs = {"tokens": {"shape": [6], "dtype": "int32"}, "allow": {"shape": [6], "dtype": "int32"}}
    heads = (
        {"num_heads": 2, "key_dim": 4}
        if layer_type == "MultiHeadAttention"
        else {"head_dim": 4, "num_query_heads": 2, "num_key_value_heads": 1}
    )
    layers = [
        {**EMB, "name": "x", "inputs": "tokens"},
        # (batch, 6, 6) of 0/1 with a Keras mask of its own: an embedding of 0/1 rows
        {**EMB, "name": "m", "inputs": "allow", "input_dim": 2, "output_dim": 6},
        {
            "type": layer_type,
            "name": "att",
            "dropout": dropout,
            **heads,
            "inputs": {"query": "x", "value": "x", "attention_mask": "m"},
        },
    ]
    checked = load(spec(layers, inputs))
    assert checked.shapes["m"].mask is not None
    state = split(CompiledModel(checked, seed=1))
    # `m`'s rows 0.0 / 1.0: embedding row 0 all zeros, row 1 all ones
    state.params["layers"]["m"]["embeddings"] = jnp.asarray([[0.0] * 6, [1.0] * 6])
    kmodel, klayers = keras_twin(checked.spec)
    copy_weights(state, klayers)
    allow = np.array([[1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 1, 1], [0] * 6, [1] * 6], np.int32)
    x = {"tokens": TOKENS, "allow": allow}
    (outputs, masks), _ = state.apply(
        {k: jnp.asarray(v) for k, v in x.items()}, training=False, return_masks=True
    )
    ref = kmodel([x[n] for n in checked.graph.inputs])
    np.testing.assert_allclose(np.asarray(outputs["att"]), np.asarray(ref), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(masks["att"]), TOKENS != 0)


@pytest.mark.parametrize("pool", [False, True])
def test_attention_after_multi_head_attention_sees_the_run_time_masks(pool):
    """Keras gathers Attention's `mask=[query_mask, value_mask]` at run time, after
    MultiHeadAttention removed the mask of `x`: the query is unmasked (so is the output
    at run time) while the value (the MultiHeadAttention output) keeps its mask. The
    mask Keras's graph recorded for the output still reaches a pooling layer's `mask=`."""
    layers = [
        {**EMB, "name": "x"},
        {"type": "MultiHeadAttention", "name": "mha", "num_heads": 2, "key_dim": 4, "inputs": "x"},
        {"type": "Attention", "name": "att", "inputs": {"query": "x", "value": "mha"}},
    ]
    if pool:
        layers.append({"type": "GlobalAveragePooling1D"})
    assert_same(spec(layers), {"tokens": TOKENS[:3]}, masked=False)
    shapes = load(spec(layers)).shapes
    assert shapes["att"].mask is None and shapes["att"].graph_mask is not None


def test_group_query_attention_after_multi_head_attention():
    layers = [
        {**EMB, "name": "x"},
        {"type": "MultiHeadAttention", "name": "mha", "num_heads": 2, "key_dim": 4, "inputs": "x"},
        {
            "type": "GroupQueryAttention",
            "head_dim": 4,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
            "inputs": {"query": "x", "value": "mha"},
        },
    ]
    assert_same(spec(layers), {"tokens": TOKENS}, masked=False)


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "Attention"},
        {
            "type": "GroupQueryAttention",
            "head_dim": 2,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
        },
    ],
    ids=lambda d: d["type"],
)
def test_mask_of_a_rank_4_input_is_refused(layer, tmp_path):
    """An embedding of (steps, words) ids is masked (batch, steps, words): Keras would
    not apply that mask as key positions; refused, positioned on the layer."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "modelspec: 1\nname: m\nmodel:\n  inputs:\n    t: {shape: [3, 4], dtype: int32}\n"
        "  layers:\n    - {type: Embedding, input_dim: 9, output_dim: 4, mask_zero: true}\n"
        f"    - {layer}\n".replace("'", "")
    )
    message = _error_at(path)
    assert f"{path}:8:" in message, message
    assert "a mask on `query`" in message or "(batch, steps, features)" in message, message


def _error_at(path) -> str:
    with pytest.raises(SpecError) as info:
        load(str(path))
    return str(info.value)


def test_gqa_refuses_a_three_axis_mask():
    """A TimeDistributed output keeps its (batch, steps, words) input mask; attention
    over it is refused as Keras would not apply that mask."""
    inputs = {"t": {"shape": [3, 4], "dtype": "int32"}}
    message = _error(
        [
            {"type": "Embedding", "input_dim": 9, "output_dim": 4, "mask_zero": True},
            {"type": "TimeDistributed", "layer": {"type": "LSTM", "units": 4}},
            {
                "type": "GroupQueryAttention",
                "head_dim": 2,
                "num_query_heads": 2,
                "num_key_value_heads": 1,
            },
        ],
        inputs,
    )
    assert "GroupQueryAttention" in message and "mask" in message, message
    assert "with mask (None, 3, 4)" in message and "layers[2]" in message, message
