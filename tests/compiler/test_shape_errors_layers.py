"""Shape errors of conv, pooling, normalization and merge layers: each impossible
configuration is reported by `load` (no JAX, no build) as one positioned diagnostic on
the argument at fault (or on `inputs`), naming the layer and the shapes involved."""

import textwrap

import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError


def spec(inputs: dict[str, list[int]], *layers: dict) -> dict:
    return {
        "modelspec": 1,
        "name": "t",
        "model": {"inputs": {n: {"shape": s} for n, s in inputs.items()}, "layers": list(layers)},
    }


def only_error(source):
    with pytest.raises(SpecError) as info:
        load(source)
    (diag,) = info.value.diagnostics
    return diag


def test_conv_kernel_larger_than_input_with_valid_padding():
    d = only_error(spec({"x": [4, 2]}, {"type": "Conv1D", "filters": 2, "kernel_size": 5}))
    assert d.path == "model.layers[0].kernel_size"
    assert "Conv1D 'conv1d'" in d.message and "smaller than the kernel [5]" in d.message
    assert d.received == "kernel_size=5" and "padding: same" in d.hint


def test_conv2d_dilated_kernel_larger_than_input():
    d = only_error(
        spec(
            {"x": [6, 9, 1]}, {"type": "Conv2D", "filters": 1, "kernel_size": 3, "dilation_rate": 3}
        )
    )
    assert d.path == "model.layers[0].kernel_size"
    assert "smaller than the kernel [3, 3]" in d.message


def test_same_padding_accepts_a_kernel_larger_than_the_input():
    load(spec({"x": [4, 2]}, {"type": "Conv1D", "filters": 2, "kernel_size": 5, "padding": "same"}))


def test_groups_must_divide_input_channels():
    d = only_error(
        spec({"x": [4, 4, 3]}, {"type": "Conv2D", "filters": 4, "kernel_size": 3, "groups": 2})
    )
    assert d.path == "model.layers[0].groups"
    assert "input channels (3)" in d.message and "divisible by groups" in d.message
    assert d.received == "groups=2"


def test_groups_must_divide_filters():
    d = only_error(
        spec({"x": [8, 4]}, {"type": "Conv1D", "filters": 3, "kernel_size": 1, "groups": 2})
    )
    assert d.path == "model.layers[0].groups" and "filters (3)" in d.message


def test_strides_with_dilation_rejected_as_in_keras():
    d = only_error(
        spec(
            {"x": [9, 9, 1]},
            {"type": "Conv2D", "filters": 1, "kernel_size": 3, "strides": 2, "dilation_rate": 2},
        )
    )
    assert d.path == "model.layers[0].strides"


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "GlobalAveragePooling2D"},
    ],
)
def test_wrong_input_rank(layer):
    d = only_error(spec({"x": [4, 3]}, {**layer, "inputs": "x"}))
    assert d.path == "model.layers[0].inputs"
    assert "expects rank-4 input (batch, height, width, channels)" in d.message
    assert "got rank 3" in d.message and layer["type"] in d.message


def test_conv1d_wrong_input_rank_without_explicit_inputs_points_at_layer():
    d = only_error(spec({"x": [4, 4, 3]}, {"type": "Conv1D", "filters": 2, "kernel_size": 2}))
    assert d.path == "model.layers[0]"
    assert "expects rank-3 input (batch, steps, channels)" in d.message


def test_pool_larger_than_input():
    d = only_error(spec({"x": [2, 5, 1]}, {"type": "AveragePooling2D", "pool_size": 3}))
    assert d.path == "model.layers[0].pool_size" and "smaller than pool_size" in d.message


def test_concatenate_mismatch_lists_inputs():
    d = only_error(spec({"a": [4, 3], "b": [5, 2]}, {"type": "Concatenate", "inputs": ["a", "b"]}))
    assert d.path == "model.layers[0].inputs"
    assert "must match on every axis but -1 (axis 1 differs)" in d.message
    assert d.received == "'a' (None, 4, 3), 'b' (None, 5, 2)"


def test_concatenate_batch_axis_rejected():
    d = only_error(
        spec({"a": [4], "b": [4]}, {"type": "Concatenate", "inputs": ["a", "b"], "axis": 0})
    )
    assert d.path == "model.layers[0].axis" and "batch axis" in d.message


def test_add_mismatch_names_the_axis_and_inputs():
    d = only_error(
        spec(
            {"a": [4]},
            {"type": "Dense", "units": 3, "name": "d", "inputs": "a"},
            {"type": "Add", "inputs": ["a", "d"]},
        )
    )
    assert d.path == "model.layers[1].inputs"
    assert "Add 'add': Add inputs have incompatible shapes (axis 1: 3 vs 4)" in d.message
    assert d.received == "'a' (None, 4), 'd' (None, 3)"


def test_multiply_rank_mismatch():
    d = only_error(spec({"a": [4], "b": [2, 4]}, {"type": "Multiply", "inputs": ["a", "b"]}))
    assert d.path == "model.layers[0].inputs" and "same rank" in d.message


def test_normalization_axis_out_of_range():
    d = only_error(spec({"x": [4]}, {"type": "LayerNormalization", "axis": [1, 2]}))
    assert d.path == "model.layers[0].axis" and "axis 2 is out of range" in d.message
    d = only_error(spec({"x": [4]}, {"type": "BatchNormalization", "axis": 0}))
    assert d.path == "model.layers[0].axis" and "batch axis" in d.message


def test_error_is_positioned_on_the_yaml_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent("""\
        modelspec: 1
        name: t
        model:
          inputs:
            x: {shape: [8, 8, 3]}
          layers:
            - type: Conv2D
              filters: 4
              kernel_size: 3
              groups: 2
        """)
    )
    d = only_error(path)
    assert (d.file, d.line, d.path) == (str(path), 10, "model.layers[0].groups")
