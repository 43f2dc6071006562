"""`modelspec generate`: sample tokens from a causal language model with a KV cache.

The weights are restored as `predict` restores them (the newest checkpoint, `--step N`,
or `--untrained` for the spec's initial weights; a damaged checkpoint is refused). The
prompt goes through the model once (prefill, at position 0), filling every cached
attention layer's keys and values; then each new token costs one call of one jitted
step over pure pytrees (the caches donated, the position a traced scalar, so the step
compiles once whatever the length). Greedy at temperature 0, else sampled from
softmax(scores / temperature), optionally among the `top_k` best; the key of the token
at position p is `fold_in(key(seed), p)`, so the tokens follow from the seed alone.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from modelspec.compiler.decode_check import (
    cache_dtype,
    decode_problems,
    input_vocabulary,
    output_vocabulary,
    outputs_probabilities,
    position_limit,
)
from modelspec.compiler.load import load
from modelspec.compiler.model import ModelState
from modelspec.errors import Diagnostic, SpecError, short_repr


def _usage_error(option: str, message: str, received: Any = None, hint: str | None = None):
    """A command-line mistake, reported like the other commands' (exit 2)."""
    shown = short_repr(received) if received is not None else None
    return SpecError.single(Diagnostic("<command line>", 0, 0, option, message, shown, hint))


@dataclass(frozen=True)
class Generation:
    """What `generate` produced."""

    prompt: list[int]
    tokens: list[int]
    """The generated tokens, after the prompt (a `stop_token` included)."""
    step: int | None
    """The checkpoint step of the weights; None for `--untrained`."""
    stopped: str
    """Why generation ended: "max_new_tokens" or "stop_token"."""


@dataclass(frozen=True)
class Settings:
    """How tokens are picked from the scores."""

    temperature: float = 0.0
    top_k: int | None = None
    probabilities: bool = False
    """The output is a softmax already: its logarithm is the scores."""


class Sampler:
    """The jitted prefill and decode step of one model, over pure pytrees.

    `prefill(model, caches, tokens, key)` and `step(model, caches, token, position,
    key)` return (next token (batch,), new caches); `model` is the tuple (params,
    batch_stats, rng, frozen), `caches` is donated. `step_traces` counts how often
    the step was traced (compiled): once per Sampler whatever the number of tokens."""

    def __init__(self, graphdef: Any, input_name: str, output_name: str, settings: Settings):
        self.graphdef = graphdef
        self.input_name = input_name
        self.output_name = output_name
        self.settings = settings
        self.step_traces = 0
        self.prefill = jax.jit(self._prefill, donate_argnums=1)
        self.step = jax.jit(self._step, donate_argnums=1)

    def _scores(self, model: tuple, caches: Any, tokens: jax.Array, position: jax.Array):
        """The next-token scores after the last of `tokens` (placed at `position`...),
        and the caches with their keys and values written."""
        state = ModelState(self.graphdef, *model)
        outputs, caches = state.decode({self.input_name: tokens}, caches, position)
        scores = outputs[self.output_name][:, -1, :].astype(jnp.float32)
        if self.settings.probabilities:  # a softmax output: sample from its probabilities
            scores = jnp.log(scores)
        return scores, caches

    def _pick(self, scores: jax.Array, key: jax.Array, position: jax.Array) -> jax.Array:
        """Greedy (temperature 0) or a draw from softmax(scores / temperature) among the
        `top_k` best; the key is the seed's, folded with the new token's position."""
        s = self.settings
        if s.temperature == 0:
            return jnp.argmax(scores, axis=-1).astype(jnp.int32)
        key = jax.random.fold_in(key, position)
        scaled = scores / s.temperature
        if s.top_k is None:
            return jax.random.categorical(key, scaled, axis=-1).astype(jnp.int32)
        best, ids = jax.lax.top_k(scaled, s.top_k)
        choice = jax.random.categorical(key, best, axis=-1)
        return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)

    def _prefill(self, model: tuple, caches: Any, tokens: jax.Array, key: jax.Array):
        zero = jnp.zeros((), jnp.int32)
        scores, caches = self._scores(model, caches, tokens, zero)
        return self._pick(scores, key, zero + tokens.shape[1]), caches

    def _step(self, model: tuple, caches: Any, token: jax.Array, position: jax.Array, key):
        self.step_traces += 1  # runs only while tracing: counts compilations
        scores, caches = self._scores(model, caches, token[:, None], position)
        return self._pick(scores, key, position + 1), caches


def check_request(
    checked: Any,
    prompt: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    *,
    as_bytes: bool = False,
) -> None:
    """Every reason the spec or the options cannot generate, at once (exit 2): the
    model's layers (`decode_check`), then the prompt and options against it."""
    problems = decode_problems(checked)
    if problems:
        raise SpecError(problems)
    problems = []
    if not prompt:
        problems.append(_diag("--prompt-tokens", "the prompt is empty", hint="e.g. 1,2,3."))
    bound = input_vocabulary(checked)
    limit, what = bound if bound is not None else (output_vocabulary(checked), "the output")
    bad = [t for t in prompt if not 0 <= t < limit]
    if bad:
        problems.append(
            _diag(
                "--prompt-tokens",
                f"token ids must be in [0, {limit}) ({what} takes ids below {limit})",
                bad[:10],
            )
        )
    if max_new_tokens < 1:
        problems.append(_diag("--max-new-tokens", "must be at least 1", max_new_tokens))
    if not (math.isfinite(temperature) and temperature >= 0):
        problems.append(_diag("--temperature", "must be >= 0 (0: greedy) and finite", temperature))
    vocab = output_vocabulary(checked)
    if top_k is not None and not 1 <= top_k <= vocab:
        problems.append(
            _diag("--top-k", f"must be between 1 and the vocabulary size {vocab}", top_k)
        )
    if as_bytes and vocab > 256:
        problems.append(
            _diag(
                "--as-bytes",
                f"the output scores {vocab} tokens, so its ids are not all bytes (0..255)",
                hint="Use --as-bytes only with a byte-level model (a vocabulary of 256).",
            )
        )
    positions = position_limit(checked)
    length = len(prompt) + max_new_tokens
    if positions is not None and length > positions.length:
        problems.append(
            _diag(
                "--max-new-tokens",
                f"the prompt ({len(prompt)} tokens) and {max_new_tokens} new tokens need "
                f"{length} positions, but {positions.reason}",
                f"{len(prompt)} + {max_new_tokens}",
                hint=f"Ask for at most {max(positions.length - len(prompt), 0)} new tokens "
                "or shorten the prompt.",
            )
        )
    if problems:
        raise SpecError(problems)


def _diag(option: str, message: str, received: Any = None, hint: str | None = None):
    shown = short_repr(received) if received is not None else None
    return Diagnostic("<command line>", 0, 0, option, message, shown, hint)


def generate(
    source: Any,
    run_dir: str | Path,
    prompt: Sequence[int],
    overrides: Sequence[str] = (),
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    stop_token: int | None = None,
    step: int | None = None,
    untrained: bool = False,
    allow_spec_change: bool = False,
    as_bytes: bool = False,
) -> Generation:
    """Generate up to `max_new_tokens` tokens after `prompt` with the run's weights (see
    the module docstring); refuses, before restoring anything, a model that cannot
    generate (naming every layer at fault) and a request it cannot serve."""
    if untrained and step is not None:
        raise _usage_error(
            "--step",
            "--step chooses a checkpoint, and --untrained uses none",
            step,
            hint="Pass one of them.",
        )
    prompt = [int(t) for t in prompt]
    checked = load(source, list(overrides))
    check_request(checked, prompt, max_new_tokens, temperature, top_k, as_bytes=as_bytes)

    from modelspec.runtime.restore import restore_latest
    from modelspec.runtime.session import open_session
    from modelspec.runtime.spec_diff import check_model_unchanged

    session = open_session(checked, data=False)
    if untrained:
        state, restored = session.state, None
        print(
            f"Generating with untrained weights (initialized from seed {checked.seed})",
            file=sys.stderr,
        )
    else:
        run_dir = Path(run_dir)
        check_model_unchanged(run_dir, session.spec, allow=allow_spec_change)
        state, restored = restore_latest(session, run_dir, step)
    model = (state.params, state.batch_stats, state.rng, state.frozen)
    settings = Settings(temperature, top_k, outputs_probabilities(checked))
    sampler = Sampler(session.graphdef, checked.graph.inputs[0], checked.graph.outputs[0], settings)
    tokens, stopped = run(
        sampler,
        model,
        prompt,
        max_new_tokens,
        seed=checked.seed if seed is None else seed,
        stop_token=stop_token,
        dtype=cache_dtype(checked),
    )
    return Generation(prompt, tokens, restored, stopped)


def run(
    sampler: Sampler,
    model: tuple,
    prompt: Sequence[int],
    max_new_tokens: int,
    *,
    seed: int,
    stop_token: int | None = None,
    dtype: str = "float32",
) -> tuple[list[int], str]:
    """The generation loop: prefill, then one step per token. Without `stop_token`
    nothing waits for the device until the end (the steps queue up); with it, each
    token is read back to see whether it is the stop token."""
    state = ModelState(sampler.graphdef, *model)
    caches = state.init_cache(1, len(prompt) + max_new_tokens, jnp.dtype(dtype))
    key = jax.random.key(seed)
    token, caches = sampler.prefill(model, caches, jnp.asarray([prompt], jnp.int32), key)
    out = [token]
    position = len(prompt)
    stopped = "max_new_tokens"
    while True:
        if stop_token is not None and int(token[0]) == stop_token:
            stopped = "stop_token"
            break
        if len(out) == max_new_tokens:
            break
        token, caches = sampler.step(model, caches, token, jnp.int32(position), key)
        out.append(token)
        position += 1
    return [int(t[0]) for t in jax.device_get(out)], stopped


def as_text(tokens: Sequence[int]) -> str:
    """Byte-level tokens (ids 0..255) as UTF-8 text, undecodable bytes as U+FFFD."""
    return bytes(tokens).decode("utf-8", errors="replace")
