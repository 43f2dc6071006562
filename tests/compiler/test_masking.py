"""Keras masks end to end through a compiled model, against Keras 3 functional twins.

Each model is built from a spec, its weights copied into the Keras twin
(`tests/keras_twin.py`), and run on a batch of sequences of different lengths: outputs
and the output's Keras mask must be Keras's (values at masked steps included, e.g. an
RNN repeating its last output). Shape inference must predict which tensors are masked,
and inputs Keras would treat differently are refused with positioned errors.
"""

from __future__ import annotations

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, split
from modelspec.errors import SpecError
from tests.keras_twin import copy_weights, keras_twin

TOKENS = np.array(
    [[3, 1, 4, 1, 5, 9], [2, 6, 0, 0, 0, 0], [5, 3, 5, 8, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32
)
"""Padded id sequences of lengths 6, 2, 4 and 0 (a fully masked row)."""


def spec(layers: list[dict], inputs: dict | None = None) -> dict:
    inputs = inputs or {"tokens": {"shape": [6], "dtype": "int32"}}
    return {"modelspec": 1, "name": "masking", "model": {"inputs": inputs, "layers": layers}}


def run_both(spec_dict: dict, x: dict[str, np.ndarray]):
    """(our output, our mask or None, Keras's output, Keras's mask or None), same weights."""
    checked = load(spec_dict)
    model = CompiledModel(checked, seed=1)
    kmodel, klayers = keras_twin(checked.spec)
    state = split(model)
    rng = np.random.default_rng(0)  # random biases too, so masked rows are not all zero
    for coll in (state.params,):
        for layer in coll.get("layers", {}).values():
            for k, v in layer.items():
                if isinstance(v, dict):
                    continue
                layer[k] = jnp.asarray(rng.normal(0, 0.5, v.shape).astype(np.float32))
    copy_weights(state, klayers)
    outputs, masks = state.apply(
        {k: jnp.asarray(v) for k, v in x.items()}, training=False, return_masks=True
    )[0]
    name = checked.graph.outputs[0]
    ours = np.asarray(outputs[name])
    ref = kmodel([x[n] for n in checked.graph.inputs])
    kmask = keras.backend.get_keras_mask(ref) if hasattr(keras.backend, "get_keras_mask") else None
    if kmask is None:
        kmask = getattr(ref, "_keras_mask", None)
    mask = None if name not in masks else np.asarray(masks[name])
    return checked, ours, mask, np.asarray(ref), None if kmask is None else np.asarray(kmask)


def assert_same(spec_dict, x, *, masked: bool, atol=1e-5):
    checked, ours, mask, ref, kmask = run_both(spec_dict, x)
    np.testing.assert_allclose(ours, ref, atol=atol, rtol=1e-5)
    assert (kmask is not None) == masked, f"Keras output mask: {kmask}"
    assert (mask is not None) == masked, f"our output mask: {mask}"
    name = checked.graph.outputs[0]
    assert (checked.shapes[name].mask is not None) == masked  # inferred without JAX
    if masked:
        np.testing.assert_array_equal(mask, kmask)
    return ours, mask


RNNS = [
    {"type": "SimpleRNN", "units": 5},
    {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 5}},
    {"type": "Bidirectional", "layer": {"type": "GRU", "units": 3}, "merge_mode": "sum"},
    {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3, "unroll": True}},
    {"type": "LSTM", "units": 5},
    {"type": "GRU", "units": 5},
    {"type": "GRU", "units": 5, "reset_after": False},
    {"type": "LSTM", "units": 5, "go_backwards": True},
    {"type": "LSTM", "units": 5, "unroll": True},
]


def _sequences(rnn: dict, sequences: bool) -> dict:
    if rnn["type"] == "Bidirectional":
        return {**rnn, "layer": {**rnn["layer"], "return_sequences": sequences}}
    return {**rnn, "return_sequences": sequences}


@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("rnn", RNNS, ids=lambda r: "-".join(f"{v}" for v in r.values()))
def test_embedding_mask_zero_rnn_dense(rnn, sequences):
    layers = [
        {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
        _sequences(rnn, sequences),
        {"type": "Dense", "units": 3},
    ]
    ours, mask = assert_same(spec(layers), {"tokens": TOKENS}, masked=sequences)
    if (
        sequences and rnn["type"] != "Bidirectional" and not rnn.get("go_backwards")
    ):  # masked steps repeat the last output
        np.testing.assert_allclose(ours[1, 2:], np.broadcast_to(ours[1, 1], (4, 3)), atol=1e-6)


def test_masking_layer_then_lstm():
    x = np.random.default_rng(3).normal(size=(3, 5, 2)).astype(np.float32)
    x[0, 3:] = 0.0
    x[1, 1] = 0.0  # a masked step in the middle
    x[2, :, 0] = 0.0  # one zero feature is not enough to mask
    layers = [
        {"type": "Masking", "mask_value": 0.0},
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "Dense", "units": 2, "activation": "tanh"},
    ]
    inputs = {"x": {"shape": [5, 2], "dtype": "float32"}}
    _, mask = assert_same(spec(layers, inputs), {"x": x}, masked=True)
    np.testing.assert_array_equal(mask[0], [True, True, True, False, False])
    np.testing.assert_array_equal(mask[1], [True, False, True, True, True])
    assert mask[2].all()


@pytest.mark.parametrize("dropout", [0.0, 0.2])  # Keras takes two attention paths
def test_mask_through_multi_head_attention(dropout):
    layers = [
        {"type": "Embedding", "input_dim": 10, "output_dim": 8, "mask_zero": True},
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4, "dropout": dropout},
        {"type": "Dense", "units": 3},
    ]
    assert_same(spec(layers), {"tokens": TOKENS}, masked=True)


def test_attention_clears_the_mask_of_its_inputs_as_keras():
    """Keras's MultiHeadAttention removes the run-time masks of its inputs, so the
    residual `Add([x, attention])` after it has no run-time mask — but the mask Keras's
    graph recorded for it still reaches GlobalAveragePooling1D's `mask=`."""
    layers = [
        {"name": "x", "type": "Embedding", "input_dim": 10, "output_dim": 8, "mask_zero": True},
        {"name": "att", "type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4},
        {"name": "sum", "type": "Add", "inputs": ["x", "att"]},
        {"type": "GlobalAveragePooling1D"},
    ]
    assert_same(spec(layers), {"tokens": TOKENS[:3]}, masked=False)
    shapes = load(spec(layers)).shapes
    assert shapes["sum"].mask is None and shapes["sum"].graph_mask is not None
    assert_same(spec(layers[:3]), {"tokens": TOKENS[:3]}, masked=False)


def test_value_mask_only_cross_attention():
    inputs = {
        "tokens": {"shape": [6], "dtype": "int32"},
        "q": {"shape": [3, 8], "dtype": "float32"},
    }
    layers = [
        {
            "name": "emb",
            "type": "Embedding",
            "input_dim": 10,
            "output_dim": 8,
            "mask_zero": True,
            "inputs": "tokens",
        },
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 4, "inputs": ["q", "emb"]},
    ]
    q = np.random.default_rng(1).normal(size=(3, 3, 8)).astype(np.float32)
    assert_same(spec(layers, inputs), {"tokens": TOKENS[:3], "q": q}, masked=False)


def test_global_average_pooling_1d_averages_unmasked_steps():
    layers = [
        {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
        {"type": "Dense", "units": 4, "activation": "relu"},
        {"type": "GlobalAveragePooling1D"},
        {"type": "Dense", "units": 2},
    ]
    ours, _ = assert_same(spec(layers), {"tokens": TOKENS[:3]}, masked=False)
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("merge", [{"type": "Add"}, {"type": "Concatenate", "axis": 1}])
def test_merge_masks(merge):
    layers = [
        {"name": "a", "type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
        {"name": "b", "type": "Dense", "units": 4, "inputs": "a"},
        {**merge, "inputs": ["a", "b"]},
    ]
    assert_same(spec(layers), {"tokens": TOKENS}, masked=True)


def test_concatenate_with_an_unmasked_input():
    inputs = {"tokens": {"shape": [6], "dtype": "int32"}, "f": {"shape": [6, 2]}}
    layers = [
        {
            "name": "a",
            "type": "Embedding",
            "input_dim": 10,
            "output_dim": 4,
            "mask_zero": True,
            "inputs": "tokens",
        },
        {"type": "Concatenate", "inputs": ["a", "f"]},
    ]
    f = np.ones((4, 6, 2), np.float32)
    _, mask = assert_same(spec(layers, inputs), {"tokens": TOKENS, "f": f}, masked=True)
    assert mask.all()  # Keras: an unmasked input counts as all True


def test_non_masking_layer_drops_the_mask():
    layers = [
        {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
        {"type": "Flatten"},
        {"type": "Dense", "units": 2},
    ]
    assert_same(spec(layers), {"tokens": TOKENS}, masked=False)


def test_embedding_without_mask_zero_has_no_mask():
    layers = [{"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"type": "LSTM", "units": 2}]
    assert_same(spec(layers), {"tokens": TOKENS}, masked=False)


def _error(layers, inputs=None) -> str:
    with pytest.raises(SpecError) as info:
        load(spec(layers, inputs))
    return str(info.value)


def test_softmax_on_masked_input_is_refused_at_the_layer():
    message = _error(
        [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {"type": "Softmax"},
        ]
    )
    assert ":10:" in message or "layers[1]" in message or "layers.1" in message, message
    assert "Softmax" in message and "mask" in message and "Received: mask=(None, 6)" in message


def test_batch_normalization_on_masked_input_is_refused():
    message = _error(
        [
            {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
            {"type": "BatchNormalization"},
        ]
    )
    assert "BatchNormalization" in message and "masked" in message, message


def test_error_is_positioned(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "modelspec: 1\nname: m\nmodel:\n  inputs:\n    t: {shape: [6], dtype: int32}\n"
        "  layers:\n    - {type: Embedding, input_dim: 9, output_dim: 4, mask_zero: true}\n"
        "    - {type: Softmax}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    message = str(info.value)
    assert f"{path}:8:" in message, message
    assert "Received: mask=(None, 6)" in message


def test_inferred_masks_without_jax():
    checked = load(
        spec(
            [
                {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True},
                {"type": "Dropout", "rate": 0.1},
                {"type": "LSTM", "units": 3, "return_sequences": True},
                {"type": "LSTM", "units": 3},
            ]
        )
    )
    masks = [str(s.mask) if s.mask else None for s in checked.shapes.values()]
    assert masks == ["(None, 6)", "(None, 6)", "(None, 6)", None]
