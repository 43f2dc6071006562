"""The keras-io examples ported to `specs/keras_io/`, each against its Keras original.

Every port has a builder below that writes the example's model the way the example
does (functional Keras code; its custom layers as the example defines them), naming
layers after the spec's layers. The test loads the spec, compares the parameter counts
(total and trainable) with the Keras model, copies the spec model's weights into it
and compares the forward pass in inference mode. So a port is checked against the
example's own structure — not against a twin generated from the spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import keras
import numpy as np
import pytest
from keras import layers, ops

from modelspec import load, summary
from modelspec.compiler.layer_stack import unstacked
from modelspec.compiler.model import CompiledModel, flat, split
from tests.conftest import ROOT
from tests.spec_forward import forward, random_inputs

PORTS: dict[str, Callable[[], tuple[keras.Model, dict[str, keras.layers.Layer]]]] = {}
"""spec file stem -> builder returning (the Keras model, spec layer name -> Keras layer)."""
OVERRIDES: dict[str, list[str]] = {}
"""spec file stem -> `--set` overrides the test loads it with (smaller images: the
parameter counts do not depend on the image size, the test time does)."""


def port(stem: str, overrides: tuple[str, ...] = ()):
    def register(fn):
        PORTS[stem] = fn
        OVERRIDES[stem] = list(overrides)
        return fn

    return register


def named(model: keras.Model, *names: str) -> dict[str, keras.layers.Layer]:
    """Spec layer name -> the Keras layer named the same (with '/' written as '__',
    since Keras names cannot hold '/')."""
    return {n: model.get_layer(n.replace("/", "__")) for n in names}


def with_weights(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every Keras layer that owns weights, keyed by its spec name."""
    return {layer.name.replace("__", "/"): layer for layer in model.layers if layer.weights}


def functional(inputs, outputs) -> tuple[keras.Model, dict[str, keras.layers.Layer]]:
    """A builder's result: the functional Keras model from `inputs` to `outputs` and
    every layer of it that owns weights, keyed by its spec name."""
    model = keras.Model(inputs, outputs)
    return model, with_weights(model)


@port("mnist_convnet")
def mnist_convnet():
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu", name="conv_1")(inputs)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(64, kernel_size=(3, 3), activation="relu", name="conv_2")(x)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(x)
    return functional(inputs, outputs)


@port("timeseries_classification_from_scratch")
def timeseries_fcn():
    inputs = keras.Input(shape=(500, 1))
    x = inputs
    for i in range(3):
        x = layers.Conv1D(filters=64, kernel_size=3, padding="same", name=f"stage__{i}__conv")(x)
        x = layers.BatchNormalization(name=f"stage__{i}__bn")(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(x)
    return functional(inputs, outputs)


@port("timeseries_classification_transformer")
def timeseries_transformer():
    def encoder(inputs, i, head_size=256, num_heads=4, ff_dim=4, dropout=0.25):
        p = f"encoder__{i}__"
        x = layers.MultiHeadAttention(
            key_dim=head_size, num_heads=num_heads, dropout=dropout, name=p + "mha"
        )(inputs, inputs)
        x = layers.Dropout(dropout)(x)
        x = layers.LayerNormalization(epsilon=1e-6, name=p + "norm_1")(x)
        res = x + inputs
        x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu", name=p + "ff_1")(res)
        x = layers.Dropout(dropout)(x)
        x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1, name=p + "ff_2")(x)
        x = layers.LayerNormalization(epsilon=1e-6, name=p + "norm_2")(x)
        return x + res

    inputs = keras.Input(shape=(500, 1))
    x = inputs
    for i in range(4):
        x = encoder(x, i)
    x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
    x = layers.Dense(128, activation="relu", name="mlp")(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(x)
    return functional(inputs, outputs)


@port("text_classification_from_scratch")
def imdb_conv1d():
    inputs = keras.Input(shape=(500,), dtype="int32")
    x = layers.Embedding(20000, 128, name="embedding")(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3, name="conv_1")(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3, name="conv_2")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu", name="hidden")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return functional(inputs, outputs)


@port("timeseries_weather_forecasting")
def weather():
    inputs = keras.Input(shape=(120, 7))
    lstm_out = layers.LSTM(32, name="lstm")(inputs)
    outputs = layers.Dense(1, name="temperature")(lstm_out)
    return functional(inputs, outputs)


@port("functional_api_ticket_classifier")
def tickets():
    title_input = keras.Input(shape=(10,), dtype="int32", name="title")
    body_input = keras.Input(shape=(100,), dtype="int32", name="body")
    tags_input = keras.Input(shape=(12,), name="tags")
    title_features = layers.Embedding(10000, 64, name="title_embedding")(title_input)
    body_features = layers.Embedding(10000, 64, name="body_embedding")(body_input)
    title_features = layers.LSTM(128, name="title_features")(title_features)
    body_features = layers.LSTM(32, name="body_features")(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(4, name="department")(x)
    return functional([title_input, body_input, tags_input], [priority_pred, department_pred])


HEART_NUMERIC = ["age", "trestbps", "chol", "thalach", "oldpeak", "slope"]
HEART_CATEGORIES = {"sex": 2, "cp": 5, "fbs": 2, "restecg": 3, "exang": 2, "ca": 4, "thal": 3}


@port("structured_data_classification")
def heart_disease():
    inputs = {n: keras.Input(shape=(1,), name=n) for n in HEART_NUMERIC}
    inputs |= {n: keras.Input(shape=(k,), name=n) for n, k in HEART_CATEGORIES.items()}

    class Classifier(keras.layers.Layer):  # as in the example: concatenate -> MLP
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = layers.Dense(32, activation="relu")
            self.dropout = layers.Dropout(0.5)
            self.dense_2 = layers.Dense(1, activation="sigmoid")

        def call(self, inputs):
            x = self.dense_1(layers.concatenate(list(inputs.values())))
            return self.dense_2(self.dropout(x))

    classifier = Classifier()
    model = keras.Model(inputs, classifier(inputs))
    return model, {"dense_1": classifier.dense_1, "dense_2": classifier.dense_2}


@port("text_classification_with_transformer")
def imdb_transformer():
    maxlen, vocab_size, embed_dim, num_heads, ff_dim = 200, 20000, 32, 2, 32

    class TransformerBlock(layers.Layer):  # the example's custom layer
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential(
                [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)]
            )
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            attn_output = self.dropout1(self.att(inputs, inputs))
            out1 = self.layernorm1(inputs + attn_output)
            return self.layernorm2(out1 + self.dropout2(self.ffn(out1)))

    class TokenAndPositionEmbedding(layers.Layer):  # the example's custom layer
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            positions = self.pos_emb(ops.arange(start=0, stop=ops.shape(x)[-1], step=1))
            return self.token_emb(x) + positions

    inputs = layers.Input(shape=(maxlen,), dtype="int32")
    embedding = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
    block = TransformerBlock(embed_dim, num_heads, ff_dim)
    x = layers.GlobalAveragePooling1D()(block(embedding(inputs)))
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu", name="hidden")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model, {
        "embedding/token_emb": embedding.token_emb,
        "embedding/pos_emb": embedding.pos_emb,
        "transformer/att": block.att,
        "transformer/layernorm1": block.layernorm1,
        "transformer/ffn_1": block.ffn.layers[0],
        "transformer/ffn_2": block.ffn.layers[1],
        "transformer/layernorm2": block.layernorm2,
        "hidden": model.get_layer("hidden"),
        "classifier": model.get_layer("classifier"),
    }


@port("bidirectional_lstm_imdb")
def imdb_bilstm():
    inputs = keras.Input(shape=(200,), dtype="int32")
    x = layers.Embedding(20000, 128, name="embedding")(inputs)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True), name="bilstm_1")(x)
    x = layers.Bidirectional(layers.LSTM(64), name="bilstm_2")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="classifier")(x)
    return functional(inputs, outputs)


@port("convolutional_autoencoder")
def conv_autoencoder():
    inputs = layers.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same", name="enc_1")(inputs)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same", name="enc_2")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2DTranspose(
        32, (3, 3), strides=2, activation="relu", padding="same", name="dec_1"
    )(x)
    x = layers.Conv2DTranspose(
        32, (3, 3), strides=2, activation="relu", padding="same", name="dec_2"
    )(x)
    outputs = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same", name="reconstruction")(
        x
    )
    return functional(inputs, outputs)


@port("oxford_pets_segmentation", ("model.inputs.image.shape=[64, 64, 3]",))
def oxford_pets_unet():
    inputs = keras.Input(shape=(64, 64, 3))  # the example's 160x160, smaller for speed
    x = layers.Conv2D(32, 3, strides=2, padding="same", name="entry_conv")(inputs)
    x = layers.BatchNormalization(name="entry_bn")(x)
    x = layers.Activation("relu")(x)
    previous = x
    for i, filters in enumerate([64, 128, 256]):
        p = f"down__{i}__"
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", name=p + "sep_1")(x)
        x = layers.BatchNormalization(name=p + "bn_1")(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", name=p + "sep_2")(x)
        x = layers.BatchNormalization(name=p + "bn_2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", name=p + "residual")(
            previous
        )
        x = previous = layers.add([x, residual])
    for i, filters in enumerate([256, 128, 64, 32]):
        p = f"up__{i}__"
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same", name=p + "convt_1")(x)
        x = layers.BatchNormalization(name=p + "bn_1")(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same", name=p + "convt_2")(x)
        x = layers.BatchNormalization(name=p + "bn_2")(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous)
        residual = layers.Conv2D(filters, 1, padding="same", name=p + "residual")(residual)
        x = previous = layers.add([x, residual])
    outputs = layers.Conv2D(3, 3, activation="softmax", padding="same", name="classifier")(x)
    return functional(inputs, outputs)


@port("image_classification_from_scratch", ("model.inputs.image.shape=[48, 48, 3]",))
def cats_vs_dogs_xception():
    data_augmentation = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    inputs = keras.Input(shape=(48, 48, 3))  # the example's 180x180, smaller for speed
    x = inputs
    for layer in data_augmentation:  # the example's "option 1": part of the model
        x = layer(x)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", name="entry_conv_1")(x)
    x = layers.BatchNormalization(name="entry_bn_1")(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(64, 3, padding="same", name="entry_conv_2")(x)
    x = layers.BatchNormalization(name="entry_bn_2")(x)
    x = previous = layers.Activation("relu")(x)
    for i, size in enumerate([128, 256, 512, 728]):
        p = f"stage__{i}__"
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", name=p + "sep_1")(x)
        x = layers.BatchNormalization(name=p + "bn_1")(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", name=p + "sep_2")(x)
        x = layers.BatchNormalization(name=p + "bn_2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same", name=p + "residual")(previous)
        x = previous = layers.add([x, residual])
    x = layers.SeparableConv2D(1024, 3, padding="same", name="exit_sep")(x)
    x = layers.BatchNormalization(name="exit_bn")(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="classifier")(x)
    return functional(inputs, outputs)


@port("timeseries_anomaly_detection")
def timeseries_anomaly():
    model = keras.Sequential(
        [
            layers.Input(shape=(288, 1)),
            layers.Conv1D(32, 7, padding="same", strides=2, activation="relu", name="enc_1"),
            layers.Dropout(rate=0.2),
            layers.Conv1D(16, 7, padding="same", strides=2, activation="relu", name="enc_2"),
            layers.Conv1DTranspose(
                16, 7, padding="same", strides=2, activation="relu", name="dec_1"
            ),
            layers.Dropout(rate=0.2),
            layers.Conv1DTranspose(
                32, 7, padding="same", strides=2, activation="relu", name="dec_2"
            ),
            layers.Conv1DTranspose(1, 7, padding="same", name="reconstruction"),
        ]
    )
    return model, with_weights(model)


def _unnumbered(path: str) -> str:
    """A Keras weight path without the `_<n>` suffixes Keras appends to make auto-named
    sublayers unique in a session (`forward_lstm_1/...` -> `forward_lstm/...`)."""
    return "/".join(re.sub(r"_\d+$", "", part) for part in path.split("/"))


def _copy(state, pairs: dict[str, keras.layers.Layer], execution) -> None:
    """The spec model's weights -> the Keras layers, by layer and weight name (scanned
    block stacks split into their copies' layers). Every variable on both sides must be
    matched exactly once."""
    copied = set()
    for coll in (state.params, state.batch_stats, state.frozen):
        for path, value in flat(unstacked(coll, execution)):
            layer_name, weight = path[1], "/".join(str(p) for p in path[2:])
            klayer = pairs[layer_name]
            matches = [v for v in klayer.weights if _unnumbered(v.path).endswith("/" + weight)]
            assert len(matches) == 1, (layer_name, weight, [v.path for v in klayer.weights])
            matches[0].assign(np.asarray(value))
            copied.add(id(matches[0]))
    every = {id(v) for layer in pairs.values() for v in layer.weights}
    assert copied == every, "Keras weights left without a spec counterpart"


def test_at_least_ten_keras_io_examples_are_ported():
    assert len(sorted((ROOT / "specs/keras_io").glob("*.yaml"))) >= 10
    assert {p.stem for p in (ROOT / "specs/keras_io").glob("*.yaml")} == set(PORTS)


@pytest.mark.parametrize("stem", sorted(PORTS))
def test_port_matches_the_keras_example(stem):
    spec = load(ROOT / "specs/keras_io" / f"{stem}.yaml", OVERRIDES[stem])
    info = summary(spec)
    model, pairs = PORTS[stem]()
    assert info["total_params"] == model.count_params()
    assert info["trainable_params"] == sum(int(np.prod(v.shape)) for v in model.trainable_weights)

    state = split(CompiledModel(spec))
    _copy(state, pairs, spec.execution)
    x = random_inputs(spec, batch=2, rng=np.random.default_rng(0), int_high=60)
    ours = forward(state, x, training=False)
    names = [t.name for t in model.inputs]
    feed = x if sorted(names) == sorted(x) else [x[n] for n in spec.model.inputs]
    feed = feed[0] if isinstance(feed, list) and len(feed) == 1 else feed
    theirs = model.predict_on_batch(feed)  # one compiled call: faster than eager
    theirs = theirs if isinstance(theirs, list | tuple) else [theirs]
    for name, ref in zip(info["outputs"], theirs, strict=True):
        np.testing.assert_allclose(
            np.asarray(ours[name]), np.asarray(ref), atol=3e-5, rtol=1e-4, err_msg=name
        )
