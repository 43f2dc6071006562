"""Keras masks through the wrappers, against Keras 3 functional twins.

TimeDistributed hands each timestep's slice of the mask to a wrapped layer whose call
takes one (an LSTM over the words of each sentence) and keeps its input's mask;
Bidirectional with `merge_mode: null` masks both of its outputs. Batches hold empty
rows (length 0) too.
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

WORDS = np.array(
    [
        [[1, 2, 3, 0], [4, 0, 0, 0], [0, 0, 0, 0]],
        [[5, 6, 7, 8], [1, 1, 0, 0], [2, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    ],
    np.int32,
)
"""(batch, sentences, words) ids: sentences of 0 to 4 words, a document of none."""
SENTENCES = {"words": {"shape": [3, 4], "dtype": "int32"}}
EMB = {"type": "Embedding", "input_dim": 10, "output_dim": 4, "mask_zero": True}


@pytest.mark.parametrize(
    "inner",
    [
        {"type": "LSTM", "units": 3},
        {"type": "GRU", "units": 3, "return_sequences": True},
        {"type": "Bidirectional", "layer": {"type": "SimpleRNN", "units": 2}},
    ],
    ids=lambda d: d["type"] + ("-seq" if d.get("return_sequences") else ""),
)
def test_time_distributed_rnn_over_the_words_of_each_sentence(inner):
    """The (batch, sentences, words) mask reaches the wrapped RNN one sentence at a
    time; the output keeps the input's mask unchanged (Keras's default compute_mask)."""
    layers = [EMB, {"type": "TimeDistributed", "layer": inner}]
    _, mask = assert_same(spec(layers, SENTENCES), {"words": WORDS}, masked=True)
    np.testing.assert_array_equal(mask, WORDS != 0)


def test_time_distributed_pooling_averages_the_unmasked_words():
    layers = [
        EMB,
        {"type": "TimeDistributed", "layer": {"type": "GlobalAveragePooling1D"}},
        {"type": "Dense", "units": 2},
    ]
    ours, _ = assert_same(spec(layers, SENTENCES), {"words": WORDS[:2]}, masked=True)
    assert np.isnan(ours[0, 2]).all() and np.isfinite(ours[1]).all()  # 0 words: 0 / 0


def test_time_distributed_keeps_a_step_mask_for_the_next_rnn():
    """A layer whose call takes no mask (Dense) just runs; the (batch, steps) mask
    passes through to the LSTM after it."""
    x = np.random.default_rng(4).normal(size=(3, 5, 2)).astype(np.float32)
    x[0, 2:] = 0.0
    x[2] = 0.0
    layers = [
        {"type": "Masking"},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3}},
        {"type": "LSTM", "units": 2},
    ]
    assert_same(spec(layers, {"x": {"shape": [5, 2]}}), {"x": x}, masked=False)
    mask_kept = load(spec(layers[:2], {"x": {"shape": [5, 2]}})).shapes
    assert str(mask_kept["time_distributed"].mask) == "(None, 5)"


def test_time_distributed_embedding_makes_no_mask():
    """Keras's TimeDistributed ignores the wrapped layer's mask: unmasked in, unmasked out."""
    layers = [{"type": "TimeDistributed", "layer": EMB}, {"type": "Dense", "units": 2}]
    assert_same(spec(layers, SENTENCES), {"words": WORDS}, masked=False)


def test_time_distributed_refuses_a_wrapped_layer_that_would_misread_the_mask(tmp_path):
    """Keras's Softmax would take each timestep's (batch,) mask as if it were its own;
    refused, positioned on the wrapper."""
    message = _error(
        [
            {"type": "Masking"},
            {"type": "TimeDistributed", "layer": {"type": "Softmax"}},
        ],
        {"x": {"shape": [5, 2]}},
    )
    assert "layers[1]" in message, message
    assert "TimeDistributed" in message and "Softmax" in message, message
    assert "Received: mask=(None, 5)" in message, message
    path = tmp_path / "s.yaml"
    path.write_text(
        "modelspec: 1\nname: m\nmodel:\n  inputs:\n    x: {shape: [5, 2]}\n  layers:\n"
        "    - {type: Masking}\n    - {type: TimeDistributed, layer: {type: Softmax}}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    assert f"{path}:8:" in str(info.value), str(info.value)


def _outputs_and_masks(spec_dict, x):
    """Our outputs and masks by output name, Keras's outputs, and Keras's graph masks
    of its outputs (its multi-output models do not return run-time masks)."""
    checked = load(spec_dict)
    state = split(CompiledModel(checked, seed=3))
    kmodel, klayers = keras_twin(checked.spec)
    copy_weights(state, klayers)
    (outputs, masks), _ = state.apply(
        {k: jnp.asarray(v) for k, v in x.items()}, training=False, return_masks=True
    )
    ref = kmodel([x[n] for n in checked.graph.inputs])
    kmasks = [getattr(t, "_keras_mask", None) is not None for t in kmodel.outputs]
    return checked, outputs, masks, ref, kmasks


@pytest.mark.parametrize("sequences", [True, False])
@pytest.mark.parametrize("state", [False, True])
def test_bidirectional_without_merge_masks_both_outputs(sequences, state):
    lstm = {"type": "LSTM", "units": 3, "return_sequences": sequences, "return_state": state}
    layers = [EMB, {"type": "Bidirectional", "name": "bi", "layer": lstm, "merge_mode": None}]
    names = ["bi.0", "bi.1", *(["bi.2", "bi.5"] if state else [])]
    spec_dict = spec(layers)
    spec_dict["model"]["outputs"] = names
    _, outputs, masks, ref, kmasks = _outputs_and_masks(spec_dict, {"tokens": TOKENS})
    for name, theirs in zip(names, ref, strict=True):
        np.testing.assert_allclose(np.asarray(outputs[name]), np.asarray(theirs), atol=1e-5)
    assert kmasks == [sequences, sequences] + [False] * (len(names) - 2)
    assert [n in masks for n in names] == kmasks
    for name in names[:2] if sequences else ():
        np.testing.assert_array_equal(np.asarray(masks[name]), TOKENS != 0)


def test_bidirectional_backward_output_mask_reaches_the_next_layers():
    """Both outputs' masks are used downstream: pooling of the forward sequence and an
    LSTM over the backward one, as Keras."""
    layers = [
        EMB,
        {
            "type": "Bidirectional",
            "name": "bi",
            "layer": {"type": "GRU", "units": 3, "return_sequences": True},
            "merge_mode": None,
        },
        {"type": "GlobalAveragePooling1D", "name": "pf", "inputs": "bi.0"},
        {"type": "LSTM", "units": 2, "name": "lb", "inputs": "bi.1"},
        {"type": "Concatenate", "inputs": ["pf", "lb"]},
        {"type": "Dense", "units": 2},
    ]
    checked = load(spec(layers))
    assert str(checked.shapes["bi"].mask) == "(None, 6)"
    assert_same(spec(layers), {"tokens": TOKENS[:3]}, masked=False)
