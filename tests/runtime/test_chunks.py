"""How steps_per_execution chunks are dispatched (`modelspec.runtime.chunks`): a step
that loops (an LSTM) runs as single steps, a straight-line one (an MLP) as one fused
unrolled program on CPU; the first chunk of a fresh run runs as single steps, the fused
program compiles in the background after it, and the choice depends only on the chunk's position, so a
resumed run matches an uninterrupted one bit for bit."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.runtime.chunks import StepChunks, chunk_mode, has_loops, scan_chunk
from modelspec.runtime.device_data import resident_data
from modelspec.runtime.session import open_session
from tests.runtime.data.test_device_data import assert_same, batching, copy, host_steps

N, BATCH = 40, 4  # 10 batches per epoch

LSTM = "[{type: LSTM, units: 8}, {type: Dense, units: 3}]"
MLP = "[{type: Flatten}, {type: Dense, units: 8, activation: relu}, {type: Dense, units: 3}]"


def write_spec(tmp_path: Path, layers: str) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.normal(size=(N, 5, 2)).astype("float32"),
        y=rng.integers(0, 3, N).astype("int32"),
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""\
name: chunks
seed: 1
data: {{train: {{type: npz, path: d.npz}}, batch_size: {BATCH}, shuffle: true}}
model:
  inputs: {{x: {{shape: [5, 2]}}}}
  layers: {layers}
loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
optimizer: {{type: Adam, learning_rate: 0.01}}
train: {{steps_per_execution: 3}}
""")
    return spec


def _session(tmp_path: Path, layers: str):
    return open_session(write_spec(tmp_path, layers), devices=jax.devices()[:1])


@pytest.mark.parametrize(("layers", "mode"), [(LSTM, "steps"), (MLP, "unrolled")])
def test_a_step_that_loops_runs_as_single_steps(tmp_path, layers, mode):
    """The decision comes from the traced step: the LSTM's scan over time makes it
    "steps", the MLP is fused and unrolled (on CPU; a rolled scan elsewhere)."""
    session = _session(tmp_path, layers)
    resident = resident_data(session, session.data.train, **batching(session))
    resident.train(copy(session.state), 0, 0, 3, 0)
    assert resident._chunks.mode == mode
    host_steps(session, copy(session.state), 0, 0, 3, spe=3)
    assert session.train_step.chunks.mode == mode
    args = (resident.arrays, *resident._tables(0, 0))
    traced = resident._chunks.one.trace(session.state, *args).jaxpr
    assert chunk_mode(traced, backend="cpu") == mode
    assert chunk_mode(traced, backend="gpu") == "scan"


def test_loop_detection_looks_inside_nested_jaxprs():
    def inner(x):
        return jax.lax.fori_loop(0, 3, lambda i, c: c * 2.0, x)

    def nested(x):
        return jax.lax.cond(x.sum() > 0, jax.jit(inner), lambda v: v, x)

    x = jnp.ones(3)
    assert has_loops(jax.make_jaxpr(nested)(x))
    assert has_loops(jax.make_jaxpr(jax.grad(lambda v: inner(v).sum()))(x))
    assert not has_loops(jax.make_jaxpr(lambda v: jnp.tanh(v @ jnp.ones((3, 3))))(x))


class Spy:
    """A jitted single step that counts its dispatches."""

    def __init__(self, fn):
        self.fn, self.calls = jax.jit(fn), 0

    def trace(self, *args):
        return self.fn.trace(*args)

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


@pytest.mark.parametrize("loops", [False, True])
def test_first_chunk_runs_single_steps_and_later_ones_fuse(loops):
    """Position decides: the chunk at step 0 runs as single steps (the fused program
    starts compiling once all of them ran, not during them), later chunks in one
    dispatch, unless the step loops."""

    def step(state, x):
        h = state["w"] * x
        if loops:
            h = jax.lax.fori_loop(0, 2, lambda i, c: jnp.sin(c), h)
        return {"w": state["w"] - 0.1 * jnp.cos(h), "step": state["step"] + 1}

    one = Spy(lambda s, x: step(s, x))
    fused: list[tuple[int, str]] = []

    def make_fused(count: int, mode: str):
        fused.append((count, mode))
        assert one.calls == 4  # after the first chunk's steps
        xs = jnp.ones(count)
        return jax.jit(lambda s, x: scan_chunk(lambda c, _: step(c, x), s, xs, count, mode))

    chunks = StepChunks(one, make_fused)
    state = {"w": jnp.full(3, 0.5), "step": jnp.int32(0)}
    args = (jnp.float32(1.5),)
    state = chunks.run(state, 4, 0, lambda i: args, args)
    assert one.calls == 4
    assert fused == ([] if loops else [(4, "unrolled")])
    state = chunks.run(state, 4, 4, lambda i: args, args)
    assert one.calls == (8 if loops else 4)
    state = chunks.run(state, 2, 8, lambda i: args, args)  # a shorter last chunk
    assert one.calls == (10 if loops else 4)
    assert int(state["step"]) == 10
    reference = {"w": jnp.full(3, 0.5), "step": jnp.int32(0)}
    for _ in range(10):
        reference = step(reference, args[0])
    np.testing.assert_allclose(state["w"], reference["w"], rtol=1e-6)


@pytest.mark.parametrize("layers", [LSTM, MLP])
def test_resumed_chunks_equal_an_uninterrupted_run(tmp_path, layers):
    """Two epochs in chunks of 3 with one DeviceData, vs stopping after the second
    chunk and continuing with a fresh one (as a resumed process does): bit-identical,
    and the host path's chunks give the same states."""
    session = _session(tmp_path, layers)
    kw, steps = batching(session), session.data.train.num_batches(BATCH, False)
    chunks = [(e, b, min(3, steps - b)) for e in range(2) for b in range(0, steps, 3)]

    def run(resident, state, todo):
        for epoch, b, count in todo:
            state = resident.train(state, epoch, b, count, epoch * steps + b)
        return state

    whole = run(resident_data(session, session.data.train, **kw), copy(session.state), chunks)
    part = run(resident_data(session, session.data.train, **kw), copy(session.state), chunks[:2])
    resumed = run(resident_data(session, session.data.train, **kw), copy(part), chunks[2:])
    assert_same(resumed, whole)
    host = copy(session.state)
    for epoch in range(2):
        host = host_steps(session, host, epoch, 0, steps, spe=3)
    assert_same(host, whole)


@pytest.mark.parametrize("spe", [1, 3])
def test_a_fresh_run_compiles_each_program_once(tmp_path, caplog, spe):
    """The first step is compiled from the state's shapes while the initial state is
    made in the background (`Trainer.run`, `Session.initial`); the call then finds it
    compiled: one compile of the single step, one of init, one fused program."""
    import logging

    from modelspec.runtime.trainer import train

    spec = write_spec(tmp_path, MLP)
    text = spec.read_text().replace("steps_per_execution: 3", f"steps_per_execution: {spe}")
    spec.write_text(text.replace("\ntrain: {", "\ntrain: {epochs: 2, "))
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            history = train(spec, tmp_path / "run", progress=False, devices=jax.devices()[:1])
    finally:
        jax.config.update("jax_log_compiles", False)
    assert len(history.epochs) == 2
    done = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    count = {name: sum(f"of jit({name})" in m for m in done) for name in ("init", "one", "many")}
    assert count == {"init": 1, "one": 1, "many": 1 if spe > 1 else 0}, done


def test_the_quickly_compiled_init_makes_the_same_weights(tmp_path):
    """A small state's init program is compiled without XLA's backend optimizations
    (it runs once): the same weights as the optimized program up to rounding (the
    uniform initializers' `minval + u * range` is fused differently, so some of the
    last bits differ: which also shows the quick program is the one that ran)."""
    from modelspec.compiler.model import CompiledModel, split
    from modelspec.runtime import session as sessions
    from modelspec.runtime.steps import init_state

    session = _session(tmp_path, MLP)
    assert sessions._elements(session.abstract_state) <= sessions.FAST_INIT_MAX_ELEMENTS
    optimized = jax.jit(
        lambda: init_state(split(CompiledModel(session.spec)), session.tx, session.objective)
    )()
    pairs = []
    leaves = jax.tree_util.tree_leaves
    for a, b in zip(leaves(session.state), leaves(optimized), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        pairs.append((np.asarray(a), np.asarray(b)))
        np.testing.assert_allclose(pairs[-1][0], pairs[-1][1], rtol=0, atol=1e-6)
    assert any(not np.array_equal(a, b) for a, b in pairs)
