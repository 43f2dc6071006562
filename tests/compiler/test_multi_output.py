"""Multi-output layers (`return_state: true`) and the wrapper layers' argument errors.

A multi-output layer's tensors are referenced as `name.0`, `name.1`, ...; a plain name in
`inputs` is an error with the choices, in `outputs` it means all of them. Every mistake
is one positioned diagnostic (`file:line:col: path: message. Received: ...`), from
`load` alone (no JAX).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import build
from modelspec.compiler.summary import summarize
from modelspec.errors import SpecError

HEAD = """\
modelspec: 1
name: multi
model:
  inputs:
    x: {shape: [6, 4]}
  layers:
"""


def write(tmp_path, body: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + body)
    return str(path)


def errors(tmp_path, body: str) -> list[str]:
    """The diagnostics of a spec, as printed, with the file name shortened to bad.yaml."""
    with pytest.raises(SpecError) as info:
        load(write(tmp_path, body))
    return [d.format().replace(str(tmp_path) + "/", "") for d in info.value.diagnostics]


LSTM = "    - {name: enc, type: LSTM, units: 3, return_state: true}\n"


def test_states_are_referenced_by_index_and_computed(tmp_path):
    spec = load(
        write(
            tmp_path,
            LSTM + "    - {name: head, type: Dense, units: 2, inputs: enc.2}\n"
            "  outputs: [enc.1, head, enc.0]\n",
        )
    )
    assert spec.graph.outputs == ("enc.1", "head", "enc.0")
    assert spec.output_type("enc.2").shape == (None, 3)
    assert spec.output_type("enc.3") is None
    model = build(spec, seed=0)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 4)), jnp.float32)
    out = model({"x": x})
    assert out["head"].shape == (2, 2)
    # Without return_sequences the output is the last h: Keras's output == state_h.
    np.testing.assert_allclose(np.asarray(out["enc.0"]), np.asarray(out["enc.1"]))


def test_plain_name_as_output_means_every_tensor(tmp_path):
    spec = load(write(tmp_path, LSTM))  # default output: the last layer, all 3 tensors
    assert spec.graph.outputs == ("enc.0", "enc.1", "enc.2")
    row = next(r for r in summarize(spec)["layers"] if r["name"] == "enc")
    assert row["output_shapes"] == [[None, 3]] * 3 and row["output_shape"] == [None, 3]


def test_index_past_the_outputs(tmp_path):
    assert errors(tmp_path, LSTM + "  outputs: [enc.3]\n") == [
        "bad.yaml:8:13: model.outputs[0]: enc has 3 outputs (0..2). Received: 'enc.3'. "
        "Outputs: enc.0 (output), enc.1 (state_h), enc.2 (state_c)."
    ]


def test_plain_name_of_a_multi_output_layer_as_input(tmp_path):
    assert errors(tmp_path, LSTM + "    - {type: Dense, units: 2, inputs: enc}\n") == [
        "bad.yaml:8:39: model.layers[1].inputs: 'enc' returns 3 tensors: reference one of "
        "them. Received: 'enc'. Use one of enc.0 (output), enc.1 (state_h), enc.2 (state_c)."
    ]


def test_default_input_after_a_multi_output_layer(tmp_path):
    (line,) = errors(tmp_path, LSTM + "    - {type: Dense, units: 2}\n")
    assert line.startswith("bad.yaml:8:7: model.layers[1].inputs: 'enc' returns 3 tensors")


def test_index_on_a_single_output_layer(tmp_path):
    body = "    - {name: d, type: Dense, units: 2}\n    - {type: Dense, units: 2, inputs: d.0}\n"
    (line,) = errors(tmp_path, body)
    assert line.startswith(
        "bad.yaml:8:39: model.layers[1].inputs: 'd' has one output: reference it by its name."
    )


def test_layer_names_ending_in_an_index_are_refused(tmp_path):
    (line,) = errors(tmp_path, "    - {name: enc.1, type: Dense, units: 2}\n")
    assert line == (
        "bad.yaml:7:14: model.layers[0].name: layer name 'enc.1' ends in '.<digits>', which "
        "picks one output of a multi-output layer (`lstm.1`). Received: 'enc.1'. "
        "Rename it, e.g. 'enc_1'."
    )


def test_unroll_needs_known_timesteps(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        HEAD.replace("[6, 4]", "[null, 4]") + "    - {type: SimpleRNN, units: 2, unroll: true}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    (d,) = info.value.diagnostics
    assert (d.line, d.col, d.path) == (7, 43, "model.layers[0].unroll")
    assert "cannot unroll a sequence of unknown length" in d.message


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (
            "{type: Bidirectional, layer: {type: Dense, units: 3}}",
            "bad.yaml:7:43: model.layers[0].layer.type: Bidirectional 'bidirectional' "
            "(input 'x' (None, 6, 4)): Bidirectional wraps a recurrent layer (LSTM, GRU, "
            "SimpleRNN, ConvLSTM1D/2D/3D). Received: layer.type=Dense.",
        ),
        (
            "{type: Bidirectional, layer: {type: LSTM, units: 3, go_backwards: true}}",
            "bad.yaml:7:73: model.layers[0].layer.go_backwards: Bidirectional 'bidirectional' "
            "(input 'x' (None, 6, 4)): without `backward_layer`, `layer` runs forward and its "
            "copy backward. Received: layer.go_backwards=True.",
        ),
        (
            "{type: Bidirectional, layer: {type: LSTM, units: 3}, "
            "backward_layer: {type: GRU, units: 3}}",
            "bad.yaml:7:76: model.layers[0].backward_layer.go_backwards: Bidirectional "
            "'bidirectional' (input 'x' (None, 6, 4)): `layer` and `backward_layer` must run "
            "in opposite directions. Received: layer.go_backwards=False, "
            "backward_layer.go_backwards=False.",
        ),
        (
            "{type: Bidirectional, layer: {type: LSTM, units: 3, inputs: x}}",
            "bad.yaml:7:67: model.layers[0].layer.inputs: Bidirectional 'bidirectional' "
            "(input 'x' (None, 6, 4)): a wrapped layer takes no `inputs`: the wrapper feeds it. "
            "Received: layer.inputs='x'.",
        ),
        (
            "{type: TimeDistributed, layer: {type: BatchNormalization}}",
            "bad.yaml:7:45: model.layers[0].layer.type: TimeDistributed 'time_distributed' "
            "(input 'x' (None, 6, 4)): TimeDistributed cannot wrap a layer with batch "
            "statistics (Keras computes them for each timestep separately). "
            "Received: layer.type=BatchNormalization.",
        ),
    ],
    ids=["bidi_dense", "bidi_backwards", "bidi_same_direction", "nested_inputs", "td_bn"],
)
def test_wrapper_errors_are_positioned(tmp_path, layer, expected):
    (line,) = errors(tmp_path, f"    - {layer}\n")
    assert line.startswith(expected), line


def test_bidirectional_merge_needs_equal_shapes(tmp_path):
    body = (
        "    - {type: Bidirectional, merge_mode: sum, layer: {type: LSTM, units: 3},\n"
        "       backward_layer: {type: LSTM, units: 2, go_backwards: true, name: back}}\n"
    )
    (line,) = errors(tmp_path, body)
    assert line.startswith("bad.yaml:7:41: model.layers[0].merge_mode: ")
    assert "needs forward and backward outputs of one shape" in line
    assert "Received: forward (None, 3), backward (None, 2)." in line


def test_nested_layer_errors_point_into_the_nested_spec(tmp_path):
    body = "    - {type: TimeDistributed, layer: {type: Dense, units: 0}}\n"
    (line,) = errors(tmp_path, body)
    assert line.startswith("bad.yaml:7:59: model.layers[0].layer.units: ")
    path = tmp_path / "td.yaml"
    path.write_text(
        HEAD.replace("[6, 4]", "[6, 2, 2, 1]")
        + "    - {type: TimeDistributed, layer: {type: Conv2D, filters: 1, kernel_size: 5}}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    (d,) = info.value.diagnostics
    assert d.path == "model.layers[0].layer.kernel_size" and (d.line, d.col) == (7, 78)
    assert "Conv2D 'conv2d' (in `layer`)" in d.message


def test_time_distributed_needs_a_time_axis(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        HEAD.replace("[6, 4]", "[4]")
        + "    - {type: TimeDistributed, layer: {type: Dense, units: 2}}\n"
    )
    with pytest.raises(SpecError) as info:
        load(str(path))
    (d,) = info.value.diagnostics
    assert "rank 3 or more" in d.message and (d.line, d.col) == (7, 7)


def test_block_output_index_is_renamed_to_the_expanded_layer(tmp_path):
    path = tmp_path / "blocks.yaml"
    path.write_text(
        "modelspec: 1\nname: b\n"
        "blocks:\n  enc:\n    layers:\n      - {type: LSTM, units: 3, return_state: true}\n"
        "model:\n  inputs:\n    x: {shape: [6, 4]}\n  layers:\n"
        "    - {name: e, type: enc}\n"
        "    - {type: Dense, units: 2, inputs: e.1}\n"
    )
    spec = load(str(path))
    dense = spec.graph.nodes[-1]
    assert dense.refs[0].endswith(".1") and spec.output_type(dense.refs[0]).shape == (None, 3)
