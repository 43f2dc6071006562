"""Errors a new user meets first (issue #12, "Found when tried as a new user would"):
Keras names modelspec lacks are said to be unsupported (never a near-miss "Did you
mean"), real typos still get their suggestion, an error inside a repeated block is
printed once, one error never hides another, and a missing data file is one error.
The Keras name lists in `schema/keras_names.py` are checked against the installed Keras."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.schema import keras_names
from modelspec.schema.callbacks import CALLBACK_TYPES
from modelspec.schema.layers import LAYER_TYPES

HEAD = """\
name: u
model:
  inputs: {x: {shape: [10, 4]}}
  layers:
"""
TAIL = "loss: mse\noptimizer: adam\n"


def errors(tmp_path: Path, layers: str, tail: str = TAIL, head: str = HEAD) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(head + textwrap.indent(textwrap.dedent(layers), "    ") + tail)
    with pytest.raises(SpecError) as info:
        load(path)
    return [d.format().replace(f"{path}:", "") for d in info.value.diagnostics]


def test_keras_layers_modelspec_lacks_are_said_to_be_unsupported(tmp_path):
    lines = errors(
        tmp_path,
        """\
        - {type: RandomHue, factor: 0.1}
        - {type: MaxPool1D}
        - {type: Dnese, units: 3}
        """,
    )
    assert lines == [
        "5:14: model.layers[0].type: Keras layer 'RandomHue' is not supported yet. "
        "Received: type='RandomHue'.",
        "6:14: model.layers[1].type: 'MaxPool1D' is Keras's alias of the layer "
        "'MaxPooling1D'. Received: type='MaxPool1D'. modelspec names layers by their "
        "class: write `type: MaxPooling1D`.",
        "7:14: model.layers[2].type: unknown layer type 'Dnese'. Received: type='Dnese'. "
        "Did you mean 'Dense'?",
    ]


def test_keras_arguments_modelspec_lacks_are_said_to_be_unsupported(tmp_path):
    lines = errors(
        tmp_path,
        """\
        - {type: LSTM, units: 4, stateful: true}
        - {type: Dense, units: 3, dtype: float32, input_shape: [4]}
        - {type: Dense, units: 3, kernel_regulariser: l2}
        - {type: Bidirectional, layer: {type: GRU, units: 3, stateful: true}}
        """,
    )
    assert lines == [
        "5:30: model.layers[0].stateful: Keras's argument 'stateful' of LSTM is not "
        "supported by modelspec yet. Received: stateful=true. Remove it: modelspec has no "
        "equivalent yet.",
        "6:31: model.layers[1].dtype: Keras's argument 'dtype' of Dense is called "
        "'dtype_policy' in modelspec. Received: dtype='float32'. Write `dtype_policy: ...`.",
        "6:47: model.layers[1].input_shape: Keras's argument 'input_shape' of Dense is not "
        "supported by modelspec yet. Received: input_shape=[4]. Declare input shapes under "
        "`model.inputs`.",
        "7:31: model.layers[2].kernel_regulariser: unknown argument 'kernel_regulariser' for "
        "Dense. Received: kernel_regulariser='l2'. Did you mean 'kernel_regularizer'?",
        "8:58: model.layers[3].layer.stateful: Keras's argument 'stateful' of GRU is not "
        "supported by modelspec yet. Received: stateful=true. Remove it: modelspec has no "
        "equivalent yet.",
    ]


def test_an_error_in_a_repeated_block_is_printed_once_naming_the_block(tmp_path):
    head = HEAD.replace("model:", "blocks:\n  blk:\n    layers:\n"
                        "      - {type: Conv2D, filters: 3, kernel_size: 3}\n"
                        "      - {type: Dense, units: 4, inputs: nope}\nmodel:")  # fmt: skip
    lines = errors(
        tmp_path,
        """\
        - {type: blk, repeat: 4}
        - {type: LSTM, units: 4, return_state: 3}
        """,
        head=head,
    )
    assert len(lines) == 3, lines
    assert lines[0].startswith("5:9: blocks.blk.layers[0].inputs: Conv2D 'blk/0/conv2d': ")
    assert lines[1].startswith(
        "6:41: blocks.blk.layers[1].inputs: unknown reference 'nope' in block 'blk' "
        "(reported once for the 4 copies of block 'blk')."
    )
    # after the block's 8 layers, a layer is named by the index the user wrote
    assert lines[2].startswith("11:44: model.layers[1].return_state: must be true or false.")


def test_an_inputs_error_does_not_hide_a_return_state_error(tmp_path):
    lines = errors(tmp_path, "- {type: LSTM, units: 4, return_state: 3, inputs: nope}\n")
    assert [line.split(": ")[1] for line in lines] == [  # in file order
        "model.layers[0].return_state",
        "model.layers[0].inputs",
    ]


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_missing_data_file_is_one_error_without_a_zero_samples_knock_on(tmp_path, kind):
    from modelspec.runtime.trainer import train

    source = {"npz": "{type: npz, path: gone.npz}", "csv": "{type: csv, path: gone.csv, "
              "label: y}"}[kind]  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: m\ndata:\n  train: {source}\n  validation_split: 0.2\n  batch_size: 8\n"
        "model:\n  inputs: {x: {shape: [4]}}\n  layers: [{type: Dense, units: 1}]\n" + TAIL
    )
    with pytest.raises(SpecError) as info:
        train(path, tmp_path / "run", progress=False)
    (only,) = info.value.diagnostics
    assert f"gone.{kind}' was not found" in only.message
    assert only.line == 3


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def test_the_keras_layer_names_are_keras_3s(keras):
    public = {
        n
        for n, o in vars(keras.layers).items()
        if inspect.isclass(o) and issubclass(o, keras.layers.Layer)
    }
    assert set(keras_names.KERAS_LAYERS) == public
    for alias, canonical in keras_names.KERAS_LAYER_ALIASES.items():
        assert getattr(keras.layers, alias).__name__ == canonical and canonical in LAYER_TYPES
    callbacks = {
        n
        for n, o in vars(keras.callbacks).items()
        if inspect.isclass(o) and issubclass(o, keras.callbacks.Callback)
    }
    assert set(keras_names.KERAS_CALLBACKS) == callbacks - {"Callback", "CallbackList", "History"}
    assert set(CALLBACK_TYPES) <= set(keras_names.KERAS_CALLBACKS)


def test_unsupported_arguments_are_exactly_keras_arguments_modelspec_lacks(keras):
    for name, listed in keras_names.UNSUPPORTED_ARGUMENTS.items():
        cls = getattr(keras.layers, name, None) or getattr(keras.callbacks, name)
        ours = (LAYER_TYPES.get(name) or CALLBACK_TYPES[name]).model_fields
        params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        missing = {p for p in params if p not in ours and p != "dtype"}
        assert set(listed) == missing, name
    base = inspect.signature(keras.layers.Layer.__init__).parameters
    assert "autocast" in base and "dtype" in base


def test_keras_names_need_no_keras(tmp_path):
    text = Path(keras_names.__file__).read_text()
    assert "import keras" not in text and "np." not in text
    assert np.all([isinstance(n, str) for n in keras_names.KERAS_LAYERS])
