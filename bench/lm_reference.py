"""The hand-written baseline of `bench/lm_mfu.py`: a GPT train step in plain JAX + optax.

Params are plain dicts of arrays (Keras's variable names, so `exclude_from_weight_decay`
matches the same variables), the model is written out by hand: token + learned position
embedding, pre-LayerNorm decoder blocks (LayerNorm, multi-head attention through
`jax.nn.dot_product_attention(is_causal=True)`, residual, LayerNorm, Dense with the
spec's activation, Dense, residual), final LayerNorm, logits Dense, sparse cross-entropy
from logits averaged over every token, optax AdamW (or Adam) with global-norm clipping,
one `jax.jit` with the state donated, the blocks under one `jax.lax.scan` over stacked
weights when the spec scans them (and `jax.checkpoint` with the spec's remat policy).

`gpt_layout` reads that layout off a checked spec and says why when the spec is not of
it: the baseline must compute what the spec computes, or the ratio means nothing.
Supported: float32 specs without dropout, a constant learning rate; `lm_mfu.py` checks
the equality numerically (losses of a few steps from the same weights and batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

BLOCK_TYPES = (
    "LayerNormalization",
    "MultiHeadAttention",
    "Add",
    "LayerNormalization",
    "Dense",
    "Dense",
    "Add",
)
"""The layer types of one pre-LN GPT block, in order (Dropout layers of rate 0 are
skipped)."""

ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # Keras's `gelu`: exact erf
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}

REMAT = {
    "full": None,  # jax.checkpoint's default: save nothing
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class NotReference(ValueError):
    """The spec is not of the layout the hand-written step implements (the message says
    which part)."""


@dataclass(frozen=True)
class GptLayout:
    """Where the hand-written model finds its weights in the spec's params, and the
    numbers it needs."""

    token: str
    position: str
    stack: str  # the block use's name
    layers: int
    scan: bool
    remat: str
    block: tuple[str, ...]  # the names (relative to a copy) of BLOCK_TYPES' layers
    activation: str
    epsilons: tuple[float, float, float]  # ln_1, ln_2, final
    key_dim: int
    final_ln: str
    head: str


def _type(node) -> str:
    return type(node.layer).__name__


def _check_ln(node) -> float:
    layer = node.layer
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    if axis not in (-1, (-1,)) or not layer.center or not layer.scale or layer.rms_scaling:
        raise NotReference(f"{node.name}: only LayerNormalization(axis=-1) with scale and center")
    return float(layer.epsilon)


def _check_dense(node, activations: tuple[str, ...]) -> str:
    act = node.layer.activation or "linear"
    if not node.layer.use_bias or act not in activations:
        raise NotReference(f"{node.name}: Dense with a bias and activation in {activations}")
    return act


def gpt_layout(spec: Any) -> GptLayout:
    """The layout of `spec` (a CheckedSpec) or NotReference saying what differs."""
    if spec.model.dtype_policy not in (None, "float32"):
        raise NotReference(f"dtype policy {spec.model.dtype_policy}: the reference is float32")
    nodes = [n for n in spec.graph.nodes if not (_type(n) == "Dropout" and n.layer.rate == 0)]
    if any(_type(n) == "Dropout" for n in nodes):
        raise NotReference("the model has dropout; the reference has none (set the rates to 0)")
    if len(spec.model.stacks) != 1:
        raise NotReference("the model must have exactly one repeated block use")
    use = spec.model.stacks[0]
    scanned = {s.name: s for s in spec.execution.stacks}
    segments = [s.remat for s in spec.execution.segments]
    remat = scanned[use.name].remat if use.name in scanned else (segments or ["none"])[0]
    count = use.repeat
    prefix = f"{use.name}/0/" if count > 1 else f"{use.name}/"
    head_types = [_type(n) for n in nodes[:3]]
    if head_types != ["Embedding", "PositionEmbedding", "Add"]:
        raise NotReference("the model must start with Embedding, PositionEmbedding, Add")
    tail = nodes[3 + count * len(BLOCK_TYPES) :]
    if [_type(n) for n in tail] != ["LayerNormalization", "Dense"]:
        raise NotReference("the model must end with LayerNormalization, Dense (the logits)")
    block = [n for n in nodes if n.name.startswith(prefix)]
    if tuple(_type(n) for n in block) != BLOCK_TYPES:
        raise NotReference(f"a block must be {', '.join(BLOCK_TYPES)}")
    ln1, attn, _, ln2, fc1, fc2, _ = block
    mha = attn.layer
    if not (mha.use_causal_mask and mha.use_bias and mha.dropout == 0) or mha.output_shape:
        raise NotReference(f"{attn.name}: causal MultiHeadAttention with biases, no dropout")
    if mha.value_dim not in (None, mha.key_dim):
        raise NotReference(f"{attn.name}: value_dim must equal key_dim")
    activation = _check_dense(fc1, tuple(ACTIVATIONS))
    _check_dense(fc2, ("linear",))
    _check_dense(tail[1], ("linear",))
    loss = spec.loss
    if _type_name(loss) != "SparseCategoricalCrossentropy" or not loss.from_logits:
        raise NotReference("the loss must be SparseCategoricalCrossentropy(from_logits=true)")
    if loss.ignore_class is not None or loss.reduction != "sum_over_batch_size":
        raise NotReference("the loss must average every token (no ignore_class)")
    opt = spec.optimizer
    if opt is None or opt.type not in ("Adam", "AdamW") or opt.amsgrad or opt.use_ema:
        raise NotReference("the optimizer must be Adam or AdamW (no amsgrad, no EMA)")
    if not isinstance(opt.learning_rate, int | float):
        raise NotReference("the reference takes a constant learning rate")
    if opt.clipnorm is not None or opt.clipvalue is not None or opt.gradient_accumulation_steps:
        raise NotReference("only global_clipnorm clipping, no gradient accumulation")
    return GptLayout(
        token=nodes[0].name,
        position=nodes[1].name,
        stack=use.name,
        layers=count,
        scan=use.name in scanned,
        remat=remat,
        block=tuple(n.name[len(prefix) :] for n in block),
        activation=activation,
        epsilons=(_check_ln(ln1), _check_ln(ln2), _check_ln(tail[0])),
        key_dim=mha.key_dim,
        final_ln=tail[0].name,
        head=tail[1].name,
    )


def _type_name(spec_obj: Any) -> str:
    return getattr(spec_obj, "type", type(spec_obj).__name__)


# -- parameters ----------------------------------------------------------------------
def reference_params(layout: GptLayout, params: Any) -> dict:
    """Copies of the spec's initial weights as plain nested dicts (`params` is the
    session's `state.params`): blocks stacked on a leading axis when the spec scans,
    a list of per-block dicts otherwise."""
    layers = params["layers"]
    plain = lambda tree: jax.tree.map(jnp.array, dict(tree))  # noqa: E731  (copies)
    out = {
        "token": plain(layers[layout.token]),
        "position": plain(layers[layout.position]),
        "final_ln": plain(layers[layout.final_ln]),
        "head": plain(layers[layout.head]),
    }
    names = layout.block
    if layout.scan:
        stacked = layers[layout.stack]
        out["blocks"] = {n: plain(stacked[n]) for n in names if n in stacked}
    else:
        prefix = [f"{layout.stack}/{i}/" for i in range(layout.layers)]
        if layout.layers == 1:
            prefix = [f"{layout.stack}/"]
        out["blocks"] = [
            {n: plain(layers[p + n]) for n in names if p + n in layers} for p in prefix
        ]
    return out


# -- the model -----------------------------------------------------------------------
def _layer_norm(x, p, eps):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["gamma"] + p["beta"]


def _dense(x, p):
    return x @ p["kernel"] + p["bias"]


def _attention(x, p, key_dim):
    q = jnp.einsum("btd,dhk->bthk", x, p["query"]["kernel"]) + p["query"]["bias"]
    k = jnp.einsum("btd,dhk->bthk", x, p["key"]["kernel"]) + p["key"]["bias"]
    v = jnp.einsum("btd,dhk->bthk", x, p["value"]["kernel"]) + p["value"]["bias"]
    ctx = jax.nn.dot_product_attention(q, k, v, scale=1.0 / math.sqrt(key_dim), is_causal=True)
    out = p["attention_output"]
    return jnp.einsum("bthk,hkd->btd", ctx, out["kernel"]) + out["bias"]


def make_block(layout: GptLayout):
    """(x, block weights) -> x: one pre-LN decoder block (under jax.checkpoint when the
    spec rematerializes)."""
    ln1, attn, _, ln2, fc1, fc2, _ = layout.block
    act = ACTIVATIONS[layout.activation]
    eps1, eps2, _ = layout.epsilons

    def block(x, p):
        x = x + _attention(_layer_norm(x, p[ln1], eps1), p[attn], layout.key_dim)
        h = act(_dense(_layer_norm(x, p[ln2], eps2), p[fc1]))
        return x + _dense(h, p[fc2])

    if layout.remat == "none":
        return block
    return jax.checkpoint(block, policy=REMAT[layout.remat])


def forward(layout: GptLayout, params: dict, tokens):
    """Logits (B, T, vocab) of int tokens (B, T)."""
    block = make_block(layout)
    x = jnp.take(params["token"]["embeddings"], tokens, axis=0)
    x = x + params["position"]["embeddings"][None, : tokens.shape[1]]
    if layout.scan:
        x, _ = jax.lax.scan(lambda c, p: (block(c, p), None), x, params["blocks"])
    else:
        for p in params["blocks"]:
            x = block(x, p)
    x = _layer_norm(x, params["final_ln"], layout.epsilons[2])
    return _dense(x, params["head"])


# -- the train step ------------------------------------------------------------------
class RefState(NamedTuple):
    params: dict
    opt_state: Any
    loss_sum: jax.Array  # what a hand-written loop keeps for its log line
    step: jax.Array


def optimizer(spec: Any) -> optax.GradientTransformation:
    """optax's AdamW (or Adam) with the spec's hyperparameters, after global-norm
    clipping; `exclude_from_weight_decay` as a mask on the variable paths."""
    opt = spec.optimizer
    stages = []
    if opt.global_clipnorm is not None:
        stages.append(optax.clip_by_global_norm(opt.global_clipnorm))
    if opt.weight_decay:
        exclude = tuple(opt.exclude_from_weight_decay)

        def mask(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, _: not any(s in jax.tree_util.keystr(path) for s in exclude), params
            )

        stages.append(
            optax.adamw(
                opt.learning_rate,
                opt.beta_1,
                opt.beta_2,
                opt.epsilon,
                weight_decay=opt.weight_decay,
                mask=mask,
            )
        )
    else:
        stages.append(optax.adam(opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon))
    return optax.chain(*stages)


def init_state(params: dict, tx: optax.GradientTransformation) -> RefState:
    return RefState(params, tx.init(params), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))


def make_step(layout: GptLayout, tx: optax.GradientTransformation, shardings=None):
    """The jitted (state, tokens, labels) -> state, state donated; `shardings`
    (state, batch) places them as the modelspec step does on a mesh."""

    def loss_fn(params, tokens, labels):
        logits = forward(layout, params, tokens)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))

    def step(state: RefState, tokens, labels) -> RefState:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, tokens, labels)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return RefState(params, opt_state, state.loss_sum + loss, state.step + 1)

    kw = {}
    if shardings is not None:
        state_sharding, batch_sharding = shardings
        kw = {
            "in_shardings": (state_sharding, batch_sharding, batch_sharding),
            "out_shardings": state_sharding,
        }
    return jax.jit(step, donate_argnums=0, **kw)
