"""Convolutions: what Keras refuses is refused when a spec is loaded, positioned on the
argument at fault; and the transposed convolutions' size/padding rule equals Keras's.

The numerics of every conv layer type are in `test_conv.py`; here are the arguments and
inputs Keras rejects (each checked against Keras too), the one configuration where Keras
returns an empty tensor and we refuse instead, and the transposed-conv rule on a grid
of sizes, kernels, strides, dilations and output paddings against Keras's own functions.
"""

import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras.src.backend.common.backend_utils import (
    compute_conv_transpose_output_shape,
    compute_conv_transpose_padding_args_for_jax,
)
from keras.src.utils.naming import to_snake_case

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel
from modelspec.schema.layers.conv_shapes import transpose_pads, transpose_size
from tests.conformance.diagnostics import assert_on_layer_field, keras_refuses, written
from tests.conformance.harness import spec_for
from tests.conformance.test_conv import one


def _keras(layer_type: str, shape: tuple, dtype: str = "float32", **args):
    """Build the Keras layer and call it on zeros of `shape` (batch included)."""
    return lambda: getattr(keras.layers, layer_type)(**args)(np.zeros(shape, dtype))


# (layer as written (its first line is line 9), input shape, input dtype, diagnostic
# path below model.layers[0] (None: the layer itself), its line, message fragment,
# what Keras does with the same arguments (None: no such argument), what Keras says)
REFUSED = [
    (
        "type: Conv2DTranspose\nfilters: 2\nkernel_size: 3",
        [4, 3],
        "float32",
        None,
        7,
        "expects rank-4 input (batch, height, width, channels), got rank 3",
        _keras("Conv2DTranspose", (1, 4, 3), filters=2, kernel_size=3),
        "expected min_ndim",
    ),
    (
        "type: Conv2DTranspose\nfilters: 2\nkernel_size: 3\nstrides: 2\noutput_padding: [1, 2]",
        [4, 4, 1],
        "float32",
        "output_padding",
        13,
        "smaller than strides on every axis, but on axis 1 it is 2 with strides 2",
        _keras(
            "Conv2DTranspose",
            (1, 4, 4, 1),
            filters=2,
            kernel_size=3,
            strides=2,
            output_padding=(1, 2),
        ),
        "output_padding",
    ),
    (
        "type: Conv1DTranspose\nfilters: 1\nkernel_size: 2\nstrides: 2\ndilation_rate: 2",
        [6, 1],
        "float32",
        "strides",
        12,
        "strides > 1 cannot be combined with dilation_rate > 1",
        _keras("Conv1DTranspose", (1, 6, 1), filters=1, kernel_size=2, strides=2, dilation_rate=2),
        "not supported in conjunction",
    ),
    (
        "type: Conv3DTranspose\nfilters: 1\nkernel_size: 2\nstrides: 2\noutput_padding: [1, 1]",
        [2, 2, 2, 1],
        "float32",
        "output_padding",
        13,
        "needs 3 value(s)",
        _keras(
            "Conv3DTranspose",
            (1, 2, 2, 2, 1),
            filters=1,
            kernel_size=2,
            strides=2,
            output_padding=(1, 1),
        ),
        "output_padding",
    ),
    (
        "type: Conv1DTranspose\nfilters: 1\nkernel_size: 2\noutput_padding: -1",
        [4, 1],
        "float32",
        "output_padding",
        12,
        ">= 0",
        _keras("Conv1DTranspose", (1, 4, 1), filters=1, kernel_size=2, output_padding=-1),
        ">= 0",
    ),
    (
        "type: DepthwiseConv2D\nkernel_size: 2",
        [4, 4, 2],
        "int32",
        None,
        7,
        "DepthwiseConv2D needs a float input, but its input is int32",
        _keras("DepthwiseConv2D", (1, 4, 4, 2), "int32", kernel_size=2),
        "same dtypes",
    ),
    (
        "type: SeparableConv1D\nfilters: 2\nkernel_size: 5",
        [4, 2],
        "float32",
        "kernel_size",
        11,
        "smaller than the kernel [5] with padding='valid'",
        _keras("SeparableConv1D", (1, 4, 2), filters=2, kernel_size=5),
        "zero or negative",
    ),
    (
        "type: Conv3D\nfilters: 2\nkernel_size: [3, 3]",
        [4, 4, 4, 1],
        "float32",
        "kernel_size",
        11,
        "needs 3 value(s)",
        _keras("Conv3D", (1, 4, 4, 4, 1), filters=2, kernel_size=(3, 3)),
        "kernel_size",
    ),
    (
        "type: Conv3D\nfilters: 2\nkernel_size: 2",
        [4, 4, 1],
        "float32",
        None,
        7,
        "expects rank-5 input (batch, depth, height, width, channels), got rank 4",
        _keras("Conv3D", (1, 4, 4, 1), filters=2, kernel_size=2),
        "expected min_ndim",
    ),
    (
        "type: DepthwiseConv1D\nkernel_size: 2\npadding: causal",
        [4, 2],
        "float32",
        "padding",
        11,
        "'valid'",
        lambda: keras.layers.DepthwiseConv1D(2, padding="causal"),
        "padding",
    ),
    (
        "type: SeparableConv2D\nfilters: 2\nkernel_size: 2\ndepth_multiplier: 0",
        [4, 4, 1],
        "float32",
        "depth_multiplier",
        12,
        "> 0",
        lambda: keras.layers.SeparableConv2D(2, 2, depth_multiplier=0),
        "strictly positive",
    ),
    (
        "type: Conv2DTranspose\nfilters: 2\nkernel_size: 2\ngroups: 2",
        [4, 4, 2],
        "float32",
        "groups",
        12,
        "unknown argument 'groups' for Conv2DTranspose",
        lambda: keras.layers.Conv2DTranspose(2, 2, groups=2),
        "groups",
    ),
    (
        "type: DepthwiseConv2D\nkernel_size: 2\ndata_format: channels_first",
        [4, 4, 2],
        "float32",
        "data_format",
        11,
        "Keras's argument 'data_format' of DepthwiseConv2D is not supported by modelspec yet",
        None,
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """Arguments and inputs Keras refuses are refused at load, on the argument at fault
    (on the layer when the input is at fault and `inputs` is not written);
    channels-first layouts are refused as an unknown `data_format`."""
    layer_yaml, shape, dtype, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says)
    assert_on_layer_field(written(tmp_path, layer_yaml, shape, dtype), field, line, fragment)


def test_empty_transpose_output_is_refused_where_keras_returns_an_empty_tensor(tmp_path):
    """`same` + output_padding 0 + an even kernel on a length-1 axis: Keras's size rule
    gives (1 - 1) * 1 + 0 + 0 = 0 and it returns an empty tensor; a spec gets an error
    on output_padding instead."""
    args = {"filters": 2, "kernel_size": 2, "padding": "same", "output_padding": 0}
    assert _keras("Conv1DTranspose", (1, 1, 2), **args)().shape == (1, 0, 2)
    layer = "type: Conv1DTranspose\n" + "\n".join(f"{k}: {v}" for k, v in args.items())
    diag = written(tmp_path, layer, [1, 2])
    assert (diag.path, diag.line) == ("model.layers[0].output_padding", 13), diag.format()
    assert "the output would be empty on spatial axis 0" in diag.message
    assert "odd kernel_size" in diag.hint


def _grid():
    for k, s, d, padding in itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2), ("valid", "same")):
        if s > 1 and d > 1:
            continue
        for op in (None, *range(s)):
            yield k, s, d, padding, op


@pytest.mark.parametrize(("k", "s", "d", "padding", "op"), list(_grid()))
def test_transpose_size_and_pads_are_keras_rule(k, s, d, padding, op):
    """`transpose_size` (what `infer` promises) and `transpose_pads` (what the NNX layer
    pads) equal Keras's functions, and the pads give `lax.conv_transpose` that size."""
    pads = compute_conv_transpose_padding_args_for_jax((1, 9, 1), (k, 1, 1), s, padding, op, d)
    assert transpose_pads(k, s, d, padding, op) == tuple(pads[0])
    span = (k - 1) * d + 1
    left, right = pads[0]
    for size in (1, 2, 5):
        (_, want, _) = compute_conv_transpose_output_shape(
            (1, size, 1), (k,), 1, s, padding, None if op is None else (op,), dilation_rate=d
        )
        assert transpose_size(size, k, s, d, padding, op) == want
        assert (size - 1) * s + 1 + left + right - (span - 1) == want


def test_transpose_keeps_unknown_lengths_unknown_and_builds_for_any_length():
    """A variable-length input gives a variable-length output; the built layer then
    follows Keras's size rule for each concrete length."""
    layer = {"type": "Conv1DTranspose", "filters": 3, "kernel_size": 3, "strides": 2}
    spec = load(spec_for(one("t", "Conv1DTranspose", (None, 2), **layer)))
    assert spec.shapes["under_test"].output.shape == (None, None, 3)
    model = CompiledModel(spec, seed=0)
    klayer = keras.layers.Conv1DTranspose(3, 3, strides=2)
    for length in (1, 4, 7):
        x = {"x": jnp.zeros((2, length, 2))}
        got = jax.eval_shape(lambda m, inp: m(inp), model, x)["under_test"].shape
        assert got == tuple(klayer.compute_output_shape((2, length, 2)))


@pytest.mark.parametrize(
    ("layer_type", "shape", "name"),
    [
        ("Conv1DTranspose", (4, 2), "conv1d_transpose"),
        ("Conv2DTranspose", (4, 4, 2), "conv2d_transpose"),
        ("Conv3DTranspose", (2, 2, 2, 1), "conv3d_transpose"),
        ("DepthwiseConv2D", (4, 4, 2), "depthwise_conv2d"),
        ("SeparableConv1D", (4, 2), "separable_conv1d"),
    ],
)
def test_auto_names_are_keras_names(layer_type, shape, name):
    """An unnamed layer gets Keras's auto-name (`conv2d_transpose`, not `conv2dtranspose`)."""
    assert to_snake_case(layer_type) == name
    layer = {"type": layer_type, "kernel_size": 1}
    if "Depthwise" not in layer_type:
        layer["filters"] = 1
    spec = spec_for(one("unnamed", layer_type, shape))
    spec["model"]["layers"] = [layer]
    (node,) = load(spec).graph.nodes
    assert node.name == name
