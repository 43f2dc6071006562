"""ConvLSTM1D/2D/3D beyond the conformance cases (`test_recurrent.py`): what Keras
refuses is refused when a spec is loaded, positioned on the argument at fault (each
refusal checked against Keras too), and the masked step — which Keras runs only
unrolled — matches Keras's unrolled loop.
"""

import functools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from modelspec.compiler.layers import recurrent
from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, apply, split
from modelspec.compiler.penalties import build_penalties
from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.tensors import ShapeError, TensorType
from tests.conformance.diagnostics import (
    assert_on_layer_field,
    keras_refuses,
    spec_file_diagnostic,
    written,
)
from tests.conformance.harness import Case, spec_for


def _keras(shape: tuple, dtype: str = "float32", layer_type: str = "ConvLSTM2D", **args):
    """Build the Keras layer and call it on zeros of `shape` (batch included; a None
    makes a symbolic input of that shape)."""

    def call():
        layer = getattr(keras.layers, layer_type)(**args)
        if None in shape:
            return layer(keras.Input(shape[1:], dtype=dtype))
        return layer(np.zeros(shape, dtype))

    return call


def _embedded(**args):
    """Keras: Embedding(mask_zero) on (batch, 4, 5) ids -> a (batch, 4, 5) mask on the
    (batch, 4, 5, 2) sequence a ConvLSTM1D gets."""

    def call():
        ids = keras.Input((4, 5), dtype="int32")
        seq = keras.layers.Embedding(10, 2, mask_zero=True)(ids)
        model = keras.Model(ids, keras.layers.ConvLSTM1D(**args)(seq))
        return model(np.ones((2, 4, 5), "int32"))

    return call


# (layer as written (its first line is line 9), input shape, input dtype, diagnostic
# path below model.layers[0] (None: the layer itself), its line, message fragment,
# what Keras does with the same arguments (None: no such argument), what Keras says)
REFUSED = [
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 3",
        [4, 5, 2],
        None,
        7,
        "expects rank-5 input (batch, time, height, width, channels), got rank 4",
        _keras((1, 4, 5, 2), filters=2, kernel_size=3),
        "expected ndim=5, found ndim=4",
    ),
    (
        "type: ConvLSTM1D\nfilters: 2\nkernel_size: 3",
        [4, 5, 5, 2],
        None,
        7,
        "expects rank-4 input (batch, time, steps, channels), got rank 5",
        _keras((1, 4, 5, 5, 2), layer_type="ConvLSTM1D", filters=2, kernel_size=3),
        "expected ndim=4, found ndim=5",
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 3\nstrides: 2\ndilation_rate: 2",
        [4, 5, 5, 2],
        "strides",
        12,
        "strides > 1 cannot be combined with dilation_rate > 1",
        _keras((1, 4, 5, 5, 2), filters=2, kernel_size=3, strides=2, dilation_rate=2),
        "not compatible with `dilation_rate > 1`",
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 3",
        "[4, null, 5, 2]",  # as YAML writes an unknown size
        None,
        7,
        "ConvLSTM2D needs known spatial sizes",
        _keras((None, 4, None, 5, 2), filters=2, kernel_size=3),
        "only support static input shapes for the spatial dimension",
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 6",
        [4, 5, 5, 2],
        "kernel_size",
        11,
        "is smaller than the kernel [6, 6] with padding='valid'",
        _keras((1, 4, 5, 5, 2), filters=2, kernel_size=6),
        "Computed output size would be zero or negative",
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: [3, 3, 3]",
        [4, 5, 5, 2],
        "kernel_size",
        11,
        "needs 2 value(s)",
        _keras((1, 4, 5, 5, 2), filters=2, kernel_size=[3, 3, 3]),
        "must be a tuple of 2 integers",
    ),
    (
        "type: ConvLSTM1D\nfilters: 2\nkernel_size: 3\npadding: causal",
        [4, 5, 2],
        "padding",
        12,
        "valid",
        _keras((1, 4, 5, 2), layer_type="ConvLSTM1D", filters=2, kernel_size=3, padding="causal"),
        "must be a list/tuple or one of",
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 3\nunroll: true",
        "[null, 5, 5, 2]",
        "unroll",
        12,
        "cannot unroll a sequence of unknown length",
        None,  # Keras builds it, then fails only when called on a concrete input
        None,
    ),
    (
        "type: ConvLSTM2D\nfilters: 2\nkernel_size: 3\nstateful: true",
        [4, 5, 5, 2],
        "stateful",
        12,
        "Keras's argument 'stateful' of ConvLSTM2D is not supported by modelspec yet",
        None,  # Keras has the argument; we do not support stateful RNNs
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    """Inputs and arguments Keras refuses are refused at load, on the argument at fault
    (on the layer when the input is at fault and `inputs` is not written)."""
    layer_yaml, shape, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says)
    assert_on_layer_field(written(tmp_path, layer_yaml, shape), field, line, fragment)


def test_a_mask_of_more_than_two_axes_is_refused_like_keras(tmp_path):
    """Embedding(mask_zero) on (time, steps) ids masks (batch, time, steps): Keras fails
    on it (scanned or unrolled); the spec is refused on the ConvLSTM's inputs."""
    for unroll in (False, True):
        with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
            _embedded(filters=2, kernel_size=3, unroll=unroll)()
    text = (
        "modelspec: 1\nname: t\nmodel:\n  inputs:\n    ids: {shape: [4, 5], dtype: int32}\n"
        "  layers:\n    - {type: Embedding, input_dim: 10, output_dim: 2, mask_zero: true}\n"
        "    - {type: ConvLSTM1D, filters: 2, kernel_size: 3, unroll: true}\n"
    )
    diag = spec_file_diagnostic(tmp_path, text)
    assert (diag.path, diag.line) == ("model.layers[1]", 8), diag.format()
    assert "needs a (batch, timesteps) mask" in diag.message


def test_a_sequence_mask_needs_unroll_as_in_keras():
    """A (batch, time) mask: Keras's scanned ConvLSTM fails on it, so it is refused on
    `unroll`; unrolled, the output keeps the mask only with return_sequences."""
    x = TensorType((None, 4, 5, 5, 2), "float32")
    mask = TensorType((None, 4), "bool")
    m = np.array([[1, 1, 0, 1]] * 2, bool)
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        keras.layers.ConvLSTM2D(2, 3)(np.zeros((2, 4, 5, 5, 2), "float32"), mask=m)
    spec = LAYER_TYPES["ConvLSTM2D"]
    with pytest.raises(ShapeError) as info:
        spec(type="ConvLSTM2D", filters=2, kernel_size=3).infer_mask(x, mask)
    assert info.value.field == "unroll"
    unrolled = spec(type="ConvLSTM2D", filters=2, kernel_size=3, unroll=True)
    assert unrolled.infer_mask(x, mask) is None
    assert unrolled.model_copy(update={"return_sequences": True}).infer_mask(x, mask) == mask


@pytest.mark.parametrize(
    "args",
    [
        {"return_sequences": True},
        {"return_state": True, "go_backwards": True},
        {"return_sequences": True, "padding": "same", "return_state": True},
    ],
    ids=str,
)
def test_masked_steps_match_keras_unrolled(args):
    """Masked steps keep the state and repeat the previous output, as Keras's unrolled
    loop does for a ConvLSTM (the mask broadcast over the spatial state)."""
    layer = {"type": "ConvLSTM2D", "filters": 2, "kernel_size": 3, "unroll": True, **args}
    checked = load(spec_for(Case("masked", layer, {"x": ((4, 5, 5, 2), "float32")})))
    ours = CompiledModel(checked, seed=0).layers["under_test"]
    klayer = keras.layers.ConvLSTM2D(**{k: v for k, v in layer.items() if k != "type"})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5, 5, 2)).astype("float32")
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0]], bool)
    klayer(x)
    for var in klayer.weights:
        value = rng.normal(size=var.shape).astype("float32")
        var.assign(value)
        getattr(ours, var.path.rsplit("/", 1)[-1])[...] = jnp.asarray(value)
    got = ours(jnp.asarray(x), mask=jnp.asarray(mask))
    want = klayer(x, mask=mask)
    got, want = (r if isinstance(r, tuple | list) else [r] for r in (got, want))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "args",
    [
        {"dropout": 0.3, "return_sequences": True},
        {"recurrent_dropout": 0.4, "go_backwards": True},
        {"dropout": 0.2, "recurrent_dropout": 0.4, "padding": "same", "return_state": True},
    ],
    ids=str,
)
def test_training_dropout_matches_keras_with_same_masks(args, monkeypatch):
    """Keras's ConvLSTMCell draws four masks (one per gate) of the whole step input and
    of the whole state, cached for the sequence; the masks we draw are handed to Keras
    verbatim (its cached `_dropout_mask` / `_recurrent_dropout_mask`)."""
    layer = {"type": "ConvLSTM2D", "filters": 2, "kernel_size": 3, **args}
    case = Case("masks", layer, {"x": ((4, 5, 6, 2), "float32")})
    checked = load(spec_for(case))
    model = CompiledModel(checked, seed=0)
    ours = model.layers["under_test"]
    klayer = keras.layers.ConvLSTM2D(**{k: v for k, v in layer.items() if k != "type"})
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 5, 6, 2)).astype("float32")
    klayer(x)
    for var in klayer.weights:
        value = rng.normal(size=var.shape).astype("float32")
        var.assign(value)
        getattr(ours, var.path.rsplit("/", 1)[-1])[...] = jnp.asarray(value)
    drawn = {}
    calls = iter(("input", "state"))  # the order the layer draws them in

    def fixed_masks(rngs, rate, count, shape, dtype):
        which = next(calls)
        if not 0.0 < rate < 1.0:
            return None
        assert count == 4
        assert shape == (x[:, 0].shape if which == "input" else (3, *ours.state_shape))
        mask = (rng.random((count, *shape)) > rate).astype("float32") / (1.0 - rate)
        drawn[which] = mask
        return jnp.asarray(mask)

    monkeypatch.setattr(recurrent, "_masks", fixed_masks)
    got = ours(jnp.asarray(x), training=True, rngs=model.rngs)
    assert set(drawn) == {
        n for n, f in (("input", "dropout"), ("state", "recurrent_dropout")) if f in args
    }
    if "input" in drawn:
        klayer.cell._dropout_mask = [jnp.asarray(m) for m in drawn["input"]]
    if "state" in drawn:
        klayer.cell._recurrent_dropout_mask = [jnp.asarray(m) for m in drawn["state"]]
    want = klayer(x, training=True)
    got, want = (r if isinstance(r, tuple | list) else [r] for r in (got, want))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=1e-5)


def test_constraints_apply_to_keras_weight_names():
    """`kernel_`/`recurrent_`/`bias_constraint` reach the weights Keras gives them to
    (`conv_lstm_cell/kernel`, `recurrent_kernel`, `bias`); the optimizer step applies
    them generically (tests/runtime/test_regularization.py)."""
    layer = {
        "type": "ConvLSTM3D",
        "filters": 2,
        "kernel_size": 2,
        "kernel_constraint": "max_norm",
        "recurrent_constraint": "non_neg",
        "bias_constraint": "unit_norm",
    }
    checked = load(spec_for(Case("c", layer, {"x": ((3, 4, 4, 4, 2), "float32")})))
    got = {path[-1]: type(c).__name__ for path, c in build_penalties(checked).constraints}
    assert got == {"kernel": "MaxNorm", "recurrent_kernel": "NonNeg", "bias": "UnitNorm"}
    klayer = keras.layers.ConvLSTM3D(**{k: v for k, v in layer.items() if k != "type"})
    klayer(np.zeros((1, 3, 4, 4, 4, 2), "float32"))
    kept = {v.path.rsplit("/", 1)[-1]: type(v.constraint).__name__ for v in klayer.weights}
    assert kept == got


def test_training_dropout_under_jit_and_gradients():
    """Inside one jitted pure forward pass (how training runs it), dropout follows the
    rng state: the same state gives the same output, the next one another; gradients
    through the scanned convolutions are finite and reach every weight."""
    layer = {
        "type": "ConvLSTM1D",
        "filters": 2,
        "kernel_size": 3,
        "padding": "same",
        "dropout": 0.3,
        "recurrent_dropout": 0.3,
    }
    checked = load(spec_for(Case("jit", layer, {"x": ((5, 6, 2), "float32")})))
    state = split(CompiledModel(checked, seed=0))
    forward = jax.jit(functools.partial(apply, state.graphdef, training=True))
    x = {"x": jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 6, 2)), jnp.float32)}
    out1, _, rng1 = forward(state.params, state.batch_stats, state.rng, state.frozen, x)
    out2, _, _ = forward(state.params, state.batch_stats, state.rng, state.frozen, x)
    out3, _, _ = forward(state.params, state.batch_stats, rng1, state.frozen, x)
    a, b, c = (np.asarray(o["under_test"]) for o in (out1, out2, out3))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)

    def loss(params):
        out, _, _ = forward(params, state.batch_stats, state.rng, state.frozen, x)
        return jnp.sum(out["under_test"] ** 2)

    grads = jax.tree.leaves(jax.grad(loss)(state.params))
    assert len(grads) == 3
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in grads)
