"""`modelspec generate`: KV-cache generation equals re-running the full model, sampling
follows the seed, the decode step compiles once, models that mix positions otherwise
are refused with positioned errors, and the command works on a trained run."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.decode_check import decode_problems, outputs_probabilities
from modelspec.compiler.load import load
from modelspec.errors import SpecError
from modelspec.runtime.generate import Sampler, Settings, generate, run
from modelspec.runtime.session import open_session
from modelspec.runtime.steps import model_state

BLOCK = """\
blocks:
  decoder:
    params: {heads: 2, key_dim: 8, model_dim: 16, ff_dim: 32}
    layers:
      - {name: attn, type: MultiHeadAttention, num_heads: "${heads}", key_dim: "${key_dim}",
         use_causal_mask: true, dropout: 0.1, inputs: {query: x, value: x}}
      - {name: res1, type: Add, inputs: [x, attn]}
      - {name: norm1, type: LayerNormalization}
      - {name: ff1, type: Dense, units: "${ff_dim}", activation: gelu}
      - {name: ff2, type: Dense, units: "${model_dim}"}
      - {type: Dropout, rate: 0.1}
      - {name: res2, type: Add, inputs: [norm1, dropout]}
      - {name: norm2, type: LayerNormalization}
"""

TRAIN = """\
data:
  train: {type: npz, path: tokens.npz}
  batch_size: 8
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
optimizer: {type: Adam, learning_rate: 0.01}
train: {epochs: 3}
"""


def lm_spec(use: str = "{name: decoder, type: decoder, repeat: 2}", head: str = "") -> str:
    """A tiny causal language model: vocabulary 32, 16 positions, 2 heads, a decoder
    block repeated 2 times."""
    return f"""\
modelspec: 1
name: tiny-lm
seed: 0
{BLOCK}model:
  inputs: {{tokens: {{shape: [16], dtype: int32}}}}
  layers:
    - {{name: tok, type: Embedding, input_dim: 32, output_dim: 16}}
    - {{name: pos, type: PositionEmbedding, sequence_length: 16}}
    - {{name: emb, type: Add, inputs: [tok, pos]}}
    - {use}
    - {{name: logits, type: Dense, units: 32{head}}}
{TRAIN}"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "lm.yaml"
    path.write_text(lm_spec())
    return path


def naive_greedy(source, prompt, n):
    """Greedy decoding without a cache: the full model on the growing sequence each
    time, the argmax of the last position's scores."""
    session = open_session(source, data=False)
    state = model_state(session.graphdef, session.state)
    forward = jax.jit(lambda tokens: state.apply({"tokens": tokens}, training=False)[0])
    seq = list(prompt)
    for _ in range(n):
        outputs = forward(jnp.asarray([seq], jnp.int32))
        seq.append(int(jnp.argmax(outputs["logits"][0, -1])))
    return seq[len(prompt) :]


def test_greedy_with_cache_equals_rerunning_the_full_model(spec_file):
    prompt = [3, 1, 4, 1, 5]
    got = generate(spec_file, "unused", prompt, max_new_tokens=11, untrained=True)
    assert got.prompt == prompt and got.step is None and got.stopped == "max_new_tokens"
    assert len(got.tokens) == 11  # prompt + new tokens fill all 16 positions
    assert got.tokens == naive_greedy(spec_file, prompt, 11)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """The tiny model's session (untrained weights) and its model pytrees, shared by
    the tests that call the sampler directly (a session takes seconds to open)."""
    path = tmp_path_factory.mktemp("lm") / "lm.yaml"
    path.write_text(lm_spec())
    session = open_session(load(path), data=False)
    s = session.state
    return session, (s.params, s.batch_stats, s.rng, s.frozen)


def sample(lm, prompt, n, *, seed=0, stop_token=None, **settings):
    session, model = lm
    sampler = Sampler(session.graphdef, "tokens", "logits", Settings(**settings))
    return run(sampler, model, prompt, n, seed=seed, stop_token=stop_token)


def test_sampling_is_deterministic_for_a_seed_and_differs_for_another(lm):
    a, _ = sample(lm, [1, 2], 12, seed=1, temperature=1.5)
    assert a == sample(lm, [1, 2], 12, seed=1, temperature=1.5)[0]
    assert a != sample(lm, [1, 2], 12, seed=2, temperature=1.5)[0]
    # top_k=1 keeps only the best token: sampling becomes greedy, whatever the seed
    greedy, _ = sample(lm, [1, 2], 12)
    assert sample(lm, [1, 2], 12, seed=7, temperature=2.0, top_k=1)[0] == greedy
    assert greedy != a


def test_the_decode_step_compiles_once(lm):
    session, model = lm
    sampler = Sampler(session.graphdef, "tokens", "logits", Settings(temperature=1.0, top_k=4))
    first, _ = run(sampler, model, [1, 2, 3], 9, seed=0)
    assert len(first) == 9 and sampler.step_traces == 1  # 8 steps, one compilation
    run(sampler, model, [5, 6, 7], 9, seed=1)  # another prompt and seed: no new trace
    assert sampler.step_traces == 1
    # only another cache length (the caches' shape) traces the step again
    again, _ = run(sampler, model, [5, 6], 12, seed=0)
    assert len(again) == 12 and sampler.step_traces == 2


def test_stop_token_ends_generation(lm):
    full, why = sample(lm, [1, 2], 8)
    stop = full[2]
    cut, stopped = sample(lm, [1, 2], 8, stop_token=stop)
    assert why == "max_new_tokens" and stopped == "stop_token"
    assert cut == full[: full.index(stop) + 1]


def test_softmax_output_samples_from_its_probabilities(tmp_path):
    logits = tmp_path / "a.yaml"
    logits.write_text(lm_spec())
    probs = tmp_path / "b.yaml"
    probs.write_text(lm_spec(head=", activation: softmax"))
    assert outputs_probabilities(load(probs)) and not outputs_probabilities(load(logits))
    # same weights (same seed and shapes): log(softmax(z)) picks what z picks
    a = generate(logits, "u", [1, 2], max_new_tokens=6, untrained=True, temperature=0.8, seed=4)
    b = generate(probs, "u", [1, 2], max_new_tokens=6, untrained=True, temperature=0.8, seed=4)
    assert a.tokens == b.tokens


MIXING = """\
modelspec: 1
name: mixing
model:
  inputs: {tokens: {shape: [16], dtype: int32}}
  layers:
    - {name: tok, type: Embedding, input_dim: 32, output_dim: 16}
    - {name: conv, type: Conv1D, filters: 16, kernel_size: 3, padding: causal}
    - {name: rnn, type: LSTM, units: 16, return_sequences: true}
    - {name: attn, type: MultiHeadAttention, num_heads: 2, key_dim: 8, inputs: {query: rnn, value: tok}}
    - {name: logits, type: Dense, units: 32}
"""


def test_models_that_mix_positions_are_refused_naming_each_layer(tmp_path):
    path = tmp_path / "mixing.yaml"
    path.write_text(MIXING)
    problems = decode_problems(load(path))
    lines = {p.path: (p.line, p.message) for p in problems}
    assert (
        lines["model.layers[1]"][0] == 7
        and "Conv1D layer 'conv' mixes" in lines["model.layers[1]"][1]
    )
    assert (
        lines["model.layers[2]"][0] == 8 and "LSTM layer 'rnn' mixes" in lines["model.layers[2]"][1]
    )
    assert "is not causal" in lines["model.layers[3].use_causal_mask"][1]
    assert "is not self-attention" in lines["model.layers[3].inputs"][1]
    result = CliRunner().invoke(
        app, ["generate", str(path), "--prompt-tokens", "1,2", "--untrained"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(r"mixing\.yaml:7:\d+: model\.layers\[1\]: Conv1D layer 'conv'", result.stderr)
    assert re.search(r"mixing\.yaml:8:\d+: model\.layers\[2\]: LSTM layer 'rnn'", result.stderr)
    assert "4 errors." in result.stderr


def test_a_block_layer_is_refused_where_the_block_writes_it(tmp_path):
    path = tmp_path / "lm.yaml"
    text = lm_spec().replace(
        'type: Dense, units: "${ff_dim}"',
        'type: Conv1D, kernel_size: 2, padding: causal, filters: "${ff_dim}"',
    )
    path.write_text(text)
    problems = decode_problems(load(path))
    assert len(problems) == 2  # one per repetition, both at the block's line
    line = text.splitlines().index(next(s for s in text.splitlines() if "type: Conv1D" in s)) + 1
    assert {p.line for p in problems} == {line}
    assert all("mixes sequence positions" in p.message for p in problems)


@pytest.mark.parametrize(
    "edit,expected",
    [
        ([("output_dim: 16}", "output_dim: 16, mask_zero: true}")], "starts a Keras mask"),
        (
            [
                ("dtype: int32}}", "dtype: int32}, b: {shape: [2]}}"),
                ("type: Embedding,", "type: Embedding, inputs: tokens,"),
            ],
            "exactly one model input",
        ),
        ([("shape: [16]", "shape: [16, 1]")], "token ids of shape (batch, steps)"),
        ([("units: 32}", "units: 40}")], "a generated token could not be fed back"),
    ],
)
def test_other_reasons_are_positioned_too(tmp_path, edit, expected):
    path = tmp_path / "lm.yaml"
    text = lm_spec()
    for old, new in edit:
        text = text.replace(old, new)
    path.write_text(text)
    problems = decode_problems(load(path))
    assert any(expected in p.message and p.line > 0 for p in problems), problems


def test_too_many_positions_and_bad_options_are_refused(spec_file):
    with pytest.raises(SpecError) as info:
        generate(spec_file, "u", [1] * 10, max_new_tokens=7, untrained=True)
    message = info.value.diagnostics[0].format()
    assert "17 positions" in message and "has 16 steps" in message
    assert "at most 6 new tokens" in message
    with pytest.raises(SpecError) as info:
        generate(spec_file, "u", [1, 99], max_new_tokens=2, untrained=True, top_k=0)
    shown = [d.path for d in info.value.diagnostics]
    assert shown == ["--prompt-tokens", "--top-k"]


def test_position_embedding_names_its_limit(tmp_path):
    path = tmp_path / "lm.yaml"
    path.write_text(lm_spec().replace("shape: [16]", "shape: [null]"))
    with pytest.raises(SpecError) as info:
        generate(path, "u", [1, 2], max_new_tokens=20, untrained=True)
    assert "PositionEmbedding 'pos' has sequence_length=16" in info.value.diagnostics[0].message


def test_scanned_stack_generates_what_the_unscanned_one_does(tmp_path):
    runs = {}
    for scan in ("false", "true"):
        path = tmp_path / f"scan_{scan}.yaml"
        path.write_text(lm_spec(f"{{name: decoder, type: decoder, repeat: 2, scan: {scan}}}"))
        session = open_session(load(path), data=False)
        s = session.state
        lm = (session, (s.params, s.batch_stats, s.rng, s.frozen))
        plan = nnx.merge(session.graphdef, *lm[1]).plan
        assert (("stack", "decoder") in plan) == (scan == "true")  # really scanned
        runs[scan] = [
            sample(lm, [4, 2], 8)[0],
            sample(lm, [4, 2], 8, seed=3, temperature=1.0)[0],
        ]
    assert runs["true"] == runs["false"]


@pytest.fixture
def trained_run(tmp_path, monkeypatch):
    """A run directory after `modelspec train` on next-token data (a counting pattern)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 32, size=64)
    seq = (starts[:, None] + np.arange(17)[None, :]) % 32
    np.savez(tmp_path / "tokens.npz", x=seq[:, :16].astype(np.int32), y=seq[:, 1:])
    spec = tmp_path / "lm.yaml"
    spec.write_text(lm_spec())
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(spec), "--run-dir", str(run_dir), "--set", "train.epochs=1"]
    )
    assert result.exit_code == 0, result.output
    return spec, run_dir


def test_cli_generates_from_a_trained_run(trained_run):
    spec, run_dir = trained_run
    base = ["generate", str(spec), "--run-dir", str(run_dir), "--prompt-tokens", "1,2,3"]
    result = CliRunner().invoke(app, [*base, "--max-new-tokens", "5", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["prompt"] == [1, 2, 3] and len(shown["tokens"]) == 5
    assert shown["step"] == 8 and shown["stopped"] == "max_new_tokens"
    assert f"Using checkpoint step 8 of {run_dir}" in result.stderr
    text = CliRunner().invoke(app, [*base, "-n", "5", "--step", "8"])
    assert text.exit_code == 0 and text.stdout.strip() == ",".join(map(str, shown["tokens"]))
    # sampling from --seed: the same tokens twice (the second also decoded as bytes)
    sample = [*base, "-n", "8", "--temperature", "1", "--seed", "5", "--top-k", "4"]
    first = CliRunner().invoke(app, sample)
    second = CliRunner().invoke(app, [*sample, "--as-bytes", "--format", "json"])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    decoded = json.loads(second.stdout)
    assert first.stdout.strip() == ",".join(map(str, decoded["tokens"]))
    assert decoded["text"] == bytes(decoded["tokens"]).decode("utf-8", errors="replace")
    for extra, message in (
        ([], "Ask for at most 13 new tokens"),  # 3 + the default 32 > the model's 16
        (["-n", "5", "--step", "99"], "no checkpoint step 99"),
        (["-n", "5", "--step", "8", "--untrained"], "--step chooses a checkpoint"),
        (["-n", "5", "--format", "xml"], "--format"),
    ):
        bad = CliRunner().invoke(app, [*base, *extra])
        assert bad.exit_code == 2 and message in bad.stderr, (extra, bad.output)
        assert "Traceback" not in bad.output
    bad = CliRunner().invoke(app, [*base[:-1], "1,x"])
    assert bad.exit_code == 2 and "comma-separated integer token ids" in bad.stderr


def test_every_cached_or_offset_layer_type_implements_its_decode_methods():
    from modelspec.compiler.layers import nnx_class
    from modelspec.schema.layers.base import LAYER_REGISTRY

    kinds = {}
    for name, cls in LAYER_REGISTRY.items():
        kinds.setdefault(cls.decode, []).append(name)
        if cls.decode in ("cached", "offset"):
            nnx = nnx_class(cls)
            assert callable(getattr(nnx, "decode", None)), name
            assert cls.decode == "offset" or callable(getattr(nnx, "init_cache", None)), name
    assert sorted(kinds["cached"]) == ["GroupQueryAttention", "MultiHeadAttention"]
    assert kinds["offset"] == ["PositionEmbedding"]
    assert {"LSTM", "Conv1D", "Flatten", "GlobalAveragePooling1D", "Attention"} <= set(kinds[None])


@pytest.mark.parametrize(
    "layer,rank,kind",
    [
        ({"type": "Dense", "units": 4}, 3, "positionwise"),
        ({"type": "Dense", "units": 4}, 2, None),  # (batch, steps): units mix the steps
        ({"type": "LayerNormalization"}, 3, "positionwise"),
        ({"type": "LayerNormalization", "axis": [1, 2]}, 3, None),
        ({"type": "BatchNormalization", "axis": 1}, 3, None),  # moving stats per step
        ({"type": "Normalization", "axis": None, "mean": 0, "variance": 1}, 3, "positionwise"),
        ({"type": "Softmax", "axis": -2}, 3, None),
        ({"type": "Concatenate", "axis": 1}, 3, None),
        ({"type": "Activation", "activation": "softmax"}, 2, None),
        ({"type": "Activation", "activation": "relu"}, 2, "positionwise"),
        ({"type": "PReLU"}, 3, None),  # one alpha per step
        ({"type": "PReLU", "shared_axes": [1]}, 3, "positionwise"),
        (
            {"type": "EinsumDense", "equation": "abc,cd->abd", "output_shape": [None, 4]},
            3,
            "positionwise",
        ),
        (
            {
                "type": "EinsumDense",
                "equation": "abc,cd->abd",
                "output_shape": [None, 4],
                "bias_axes": "b",
            },
            3,
            None,
        ),
        ({"type": "EinsumDense", "equation": "abc,bd->acd", "output_shape": [3, 4]}, 3, None),
        (
            {"type": "EinsumDense", "equation": "...b,bc->...c", "output_shape": 4},
            3,
            "positionwise",
        ),
        (
            {"type": "EinsumDense", "equation": "...bc,cd->...bd", "output_shape": [None, 4]},
            3,
            "positionwise",
        ),
        ({"type": "EinsumDense", "equation": "...bc,bd->...cd", "output_shape": [3, 4]}, 3, None),
        ({"type": "Conv1D", "filters": 2, "kernel_size": 3}, 3, None),
    ],
)
def test_decode_kind_follows_the_axes_a_layer_acts_on(layer, rank, kind):
    from modelspec.schema.layers import LAYER_TYPES

    spec = LAYER_TYPES[layer["type"]].model_validate(layer)
    assert spec.decode_kind(rank) == kind
