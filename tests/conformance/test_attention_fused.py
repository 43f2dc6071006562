"""MultiHeadAttention and GroupQueryAttention beyond the Keras comparison: which road
computes the attention (jax.nn.dot_product_attention exactly where Keras 3.15 takes its
`ops.dot_product_attention`), which implementation `flash_attention` picks (on a
simulated CUDA device: the choice is made in Python before jax runs), and KV-cache
decoding (`init_cache`/`decode`, PositionEmbedding's `decode`) against the full causal
call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from modelspec.compiler.autocast import cast_variables
from modelspec.compiler.layers import attention_ops, nnx_class
from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.tensors import TensorType

F = "float32"


def build(layer: dict, steps: int = 6, features: int = 8, rank: int = 3):
    """The NNX layer of `layer` (a spec mapping) for self-attention on (batch, steps,
    [steps,] features) inputs, its biases random so that they matter."""
    spec = LAYER_TYPES[layer["type"]].model_validate({"bias_initializer": "random_normal"} | layer)
    x = TensorType((None, *(steps,) * (rank - 2), features), F)
    args = {"query": x, "value": x}
    return nnx_class(type(spec))(spec, args, spec.infer(args), jax.random.key(0))


def inputs(steps: int = 6, features: int = 8, rank: int = 3, batch: int = 2) -> jax.Array:
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=(batch, *(steps,) * (rank - 2), features)), jnp.float32)


@pytest.fixture
def spy(monkeypatch):
    """Records the keyword arguments of every `jax.nn.dot_product_attention` call and
    runs XLA's implementation (so a cuDNN choice can be checked on CPU)."""
    calls: list[dict] = []
    real = jax.nn.dot_product_attention

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **(kwargs | {"implementation": "xla"}))

    monkeypatch.setattr(jax.nn, "dot_product_attention", recording)
    return calls


MHA = {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 8}
GQA = {"type": "GroupQueryAttention", "head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2}

ROADS = [
    # (id, layer, input rank, on jax's fused road, its is_causal)
    ("mha", MHA, 3, True, False),
    ("mha_causal", MHA | {"use_causal_mask": True}, 3, True, True),
    ("mha_dropout", MHA | {"dropout": 0.1}, 3, False, None),
    ("mha_rank4", MHA, 4, False, None),
    ("mha_value_dim", MHA | {"value_dim": 4}, 3, False, None),
    ("gqa", GQA, 3, True, False),
    ("gqa_causal", GQA | {"use_causal_mask": True}, 3, True, True),
    ("gqa_dropout_causal", GQA | {"dropout": 0.2, "use_causal_mask": True}, 3, False, None),
]


@pytest.mark.parametrize("road", ROADS, ids=lambda r: r[0])
def test_fused_road_exactly_where_keras_takes_it(spy, road):
    """jax.nn.dot_product_attention runs without dropout on rank-3 inputs (with equal
    key and value head sizes, which jax needs), `is_causal` for causal-only masking,
    XLA's implementation on CPU; the Softmax road otherwise, in training too."""
    _, layer, rank, fused, is_causal = road
    attn = build(layer, rank=rank)
    x = inputs(rank=rank)
    attn(x, x)
    attn(x, x, training=True, rngs=nnx.Rngs(dropout=1))
    assert len(spy) == (2 if fused else 0)
    for call in spy:
        assert call["is_causal"] is is_causal and call["mask"] is None
        assert call["implementation"] == "xla"


@pytest.mark.parametrize("layer", [MHA, GQA], ids=["mha", "gqa"])
def test_masked_fused_road_gets_one_full_boolean_mask(spy, layer):
    """Causal and `attention_mask` together: one (B|1, N|1, T, S) boolean mask, not
    `is_causal`, as Keras's call merges every mask source when one is not causal."""
    attn = build(layer | {"use_causal_mask": True})
    x = inputs()
    given = jnp.asarray(np.random.default_rng(1).integers(0, 2, (2, 6, 6)), jnp.int32)
    attn(x, x, attention_mask=given)
    (call,) = spy
    assert call["is_causal"] is False
    assert call["mask"].dtype == jnp.bool_ and call["mask"].shape == (2, 1, 6, 6)


@pytest.fixture
def hopper(monkeypatch):
    """A simulated CUDA device of compute capability 9.0."""
    monkeypatch.setattr(attention_ops, "cuda_capability", lambda: (9, 0))


def _run_in(attn, dtype, *, decode: bool = False):
    """Call (or decode with) the layer with its weights and inputs in `dtype`, as a
    mixed dtype policy does."""
    x = inputs().astype(dtype)
    with cast_variables(attn, dtype):
        if decode:
            attn.decode(x, x, cache=attn.init_cache(2, 8, dtype), position=jnp.int32(0))
        else:
            attn(x, x)


FLASH = [
    # (id, layer, compute dtype, implementation)
    ("auto_bf16", MHA, jnp.bfloat16, "cudnn"),
    ("auto_f16_gqa", GQA, jnp.float16, "cudnn"),
    ("auto_float32", MHA, jnp.float32, "xla"),
    ("auto_head_not_multiple_of_8", MHA | {"key_dim": 12}, jnp.bfloat16, "xla"),
    ("auto_head_over_256", MHA | {"key_dim": 264}, jnp.bfloat16, "xla"),
    ("true_bf16", MHA | {"flash_attention": True}, jnp.bfloat16, "cudnn"),
    ("false_bf16", MHA | {"flash_attention": False}, jnp.bfloat16, "xla"),
]


@pytest.mark.parametrize("case", FLASH, ids=lambda c: c[0])
def test_flash_attention_chooses_the_implementation(spy, hopper, case):
    """null: cuDNN where jax's conditions hold (half precision, head size a multiple of
    8 up to 256 on Hopper), XLA elsewhere; true: cuDNN; false: XLA."""
    _, layer, dtype, implementation = case
    _run_in(build(layer), dtype)
    assert [c["implementation"] for c in spy] == [implementation]


def test_flash_true_refuses_what_cudnn_cannot_run(spy, hopper):
    """flash_attention: true on float32 compute is an error naming the layer and why."""
    attn = build(MHA | {"flash_attention": True, "name": "attn"})
    with pytest.raises(ValueError, match="MultiHeadAttention layer 'attn'.*float16 or bfloat16"):
        _run_in(attn, jnp.float32)


def test_flash_true_on_a_cpu_backend_fails_at_build():
    """As Keras's call fails without cuDNN, the build fails, naming the layer."""
    with pytest.raises(ValueError, match="GroupQueryAttention layer 'g'.*CUDA GPU.*cpu"):
        build(GQA | {"flash_attention": True, "name": "g"})


def test_flash_true_before_ampere_fails_at_build(monkeypatch):
    monkeypatch.setattr(attention_ops, "cuda_capability", lambda: (7, 5))
    with pytest.raises(ValueError, match="compute capability >= 8.0.*7.5"):
        build(MHA | {"flash_attention": True})


def test_flash_true_is_ignored_on_the_explicit_road():
    """Rank-4 inputs take Keras's explicit road, where Keras ignores flash_attention:
    the layer builds and runs on CPU."""
    attn = build(MHA | {"flash_attention": True}, rank=4)
    x = inputs(rank=4)
    assert attn(x, x).shape == x.shape


@pytest.mark.parametrize(
    ("flash", "implementation"), [(None, "xla"), (True, "cudnn")], ids=["null", "true"]
)
def test_decode_keeps_xla_unless_flash_is_asked_for(spy, hopper, flash, implementation):
    """A few query rows against a KV cache: `null` keeps XLA there, `true` is cuDNN."""
    attn = build(MHA | {"flash_attention": flash, "use_causal_mask": True})
    _run_in(attn, jnp.bfloat16, decode=True)
    assert [c["implementation"] for c in spy] == [implementation]


DECODERS = [
    ("mha", MHA),
    ("mha_dropout_road", MHA | {"dropout": 0.3}),
    ("mha_value_dim", MHA | {"key_dim": 4, "value_dim": 6, "output_shape": 5}),
    ("mha_no_bias", MHA | {"use_bias": False, "num_heads": 3}),
    ("gqa", GQA),
    ("gqa_multi_query", GQA | {"num_key_value_heads": 1, "head_dim": 3}),
    ("gqa_dropout_road", GQA | {"dropout": 0.2}),
]
STEPS, PREFILL, CACHE = 7, 3, 10


def _decoded(attn, x, step) -> jax.Array:
    """Prefill the first PREFILL positions, then decode one position at a time; the
    outputs concatenated over the sequence."""
    cache = attn.init_cache(x.shape[0], CACHE, jnp.float32)
    out, cache = step(x[:, :PREFILL], cache, jnp.int32(0))
    outs = [out]
    for t in range(PREFILL, x.shape[1]):
        out, cache = step(x[:, t : t + 1], cache, jnp.int32(t))
        outs.append(out)
    assert cache["key"].shape[:2] == (x.shape[0], CACHE)
    return jnp.concatenate(outs, axis=1)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("layer", DECODERS, ids=lambda d: d[0])
def test_decode_equals_the_causal_call(layer, jit):
    """Prefill then one position at a time (under jit: position traced, the cache a
    carried array) gives the full sequence's causal outputs."""
    attn = build(layer[1] | {"use_causal_mask": True}, steps=STEPS)
    x = inputs(steps=STEPS)
    full = attn(x, x)
    graphdef, state = nnx.split(attn)

    def step(state, chunk, cache, position):
        return nnx.merge(graphdef, state).decode(chunk, chunk, cache=cache, position=position)

    if jit:
        jitted = jax.jit(step)
        decoded = _decoded(attn, x, lambda *a: jitted(state, *a))
    else:
        decoded = _decoded(attn, x, lambda *a: step(state, *a))
    np.testing.assert_allclose(decoded, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "rank"),
    [(MHA, 3), (MHA | {"use_causal_mask": True}, 4)],
    ids=["not_causal", "rank4"],
)
def test_decode_refuses_what_is_not_causal_self_attention(layer, rank):
    attn = build(layer | {"name": "a"}, rank=rank)
    x = inputs(rank=rank)
    with pytest.raises(ValueError, match="MultiHeadAttention layer 'a'.*causal self-attention"):
        attn.decode(x, x, cache=attn.init_cache(2, 8, None), position=0)


def test_position_embedding_decode_equals_its_call():
    """Rows [position, position + steps) of the table, as the full call gives them,
    with the position traced under jit."""
    spec = LAYER_TYPES["PositionEmbedding"].model_validate(
        {"type": "PositionEmbedding", "sequence_length": 12}
    )
    x_type = TensorType((None, 9, 4), F)
    layer = nnx_class(type(spec))(spec, x_type, spec.infer(x_type), jax.random.key(1))
    x = inputs(steps=9, features=4)
    full = layer(x)
    graphdef, state = nnx.split(layer)
    step = jax.jit(lambda s, chunk, p: nnx.merge(graphdef, s).decode(chunk, position=p))
    parts = [step(state, x[:, :4], jnp.int32(0))]
    parts += [step(state, x[:, t : t + 1], jnp.int32(t)) for t in range(4, 9)]
    np.testing.assert_array_equal(jnp.concatenate(parts, axis=1), full)
