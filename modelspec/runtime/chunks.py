"""How a chunk of `steps_per_execution` training steps is dispatched.

The mode is chosen once per training program, automatically, from the backend and the
traced single step (`chunk_mode`):

- "unrolled" (CPU, a step without loops): one dispatch, a `lax.scan` over the chunk
  fully unrolled. XLA:CPU runs the matmuls and convolutions of a while-loop body up to
  15x slower than the same ops in straight-line code (digits CNN at spe 8: 3.5k vs 51k
  samples/s rolled vs unrolled); the price is compile time, which grows with the chunk.
- "steps" (CPU, a step that loops itself: a `scan` or `while` anywhere in its jaxpr,
  e.g. an RNN over time): one dispatch per step, the single-step program run `count`
  times from Python, as Keras's JAX `fit` does. Unrolling N copies of a step that
  holds an inner loop ran slower than single steps (LSTM(128) x 32 steps at spe 8:
  6.1k vs 7.7k samples/s), a rolled or partly unrolled scan was no faster, and such a
  step is long enough (a sequential loop) that a dispatch per step costs nothing
  measurable. It compiles only the single step.
- "scan" (other backends): one dispatch, a rolled `lax.scan`; loop bodies run at full
  speed there and compile time stays that of one step.

Time to first step: a fused program compiles 2-3x longer than the single step (an
unrolled one holds N copies of it). So the first chunk of a fresh run (the chunk that
starts at global step 0) always runs as single steps, and once its results are ready, a
background thread compiles the fused program for the chunks after it: the first results
cost one step's compile, as in Keras. Which program runs a chunk depends
only on the chunk's position, never on timing, so an uninterrupted run and a resumed
one (which never starts at step 0) run the same programs on the same batches and stay
bit-identical; fused and single steps need not agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import jax
from jax.extend.core import jaxprs_in_params

from modelspec.runtime.background import worker

__all__ = ["LOOP_PRIMITIVES", "StepChunks", "chunk_mode", "has_loops", "scan_chunk"]

LOOP_PRIMITIVES = frozenset({"scan", "while"})
"""Primitives that make a step loop (fori_loop lowers to one of them)."""


def has_loops(jaxpr: Any) -> bool:
    """Whether a (closed) jaxpr contains a loop primitive at any depth (inside jit,
    cond, custom_jvp/vjp and remat sub-jaxprs too)."""
    return any(eqn.primitive.name in LOOP_PRIMITIVES for eqn in _eqns(jaxpr))


def _eqns(jaxpr: Any) -> Iterator[Any]:
    for eqn in getattr(jaxpr, "jaxpr", jaxpr).eqns:
        yield eqn
        for sub in jaxprs_in_params(eqn.params):
            yield from _eqns(sub)


def chunk_mode(step_jaxpr: Any, backend: str | None = None) -> str:
    """ "unrolled", "steps" or "scan" for the traced single step (see the module doc)."""
    if (backend or jax.default_backend()) != "cpu":
        return "scan"
    return "steps" if has_loops(step_jaxpr) else "unrolled"


def scan_chunk(body: Callable, state: Any, xs: Any, length: int, mode: str) -> Any:
    """`length` steps of `body(state, x) -> state` in one program, as `mode` fuses them."""
    unroll = True if mode == "unrolled" else 1
    return jax.lax.scan(lambda s, x: (body(s, x), None), state, xs, length, unroll=unroll)[0]


class StepChunks:
    """Runs chunks of training steps: a jitted single step `one(state, *one_args(i))`
    for step i of a chunk, and per chunk length a fused program
    `fused(count, mode)(state, *many_args)`, compiled in the background."""

    def __init__(self, one: Callable, fused: Callable[[int, str], Callable]):
        self.one = one
        self.fused = fused
        self.mode: str | None = None
        self._programs: dict[int, Future] = {}

    def warm(self, abstract_state: Any, args: tuple) -> None:
        """Compile the single step for a state of these shapes, dtypes and shardings
        (before the state itself exists: it is being initialized in the background), so
        that the first step's call finds it compiled."""
        traced = self.one.trace(abstract_state, *args)
        if self.mode is None:
            self.mode = chunk_mode(traced.jaxpr)
        traced.lower().compile()

    def run(
        self,
        state: Any,
        count: int,
        first_step: int,
        one_args: Callable[[int], tuple],
        many_args: tuple,
    ) -> Any:
        """`count` steps from `state`, whose global step is `first_step`."""
        if count > 1 and self.mode is None:  # traced once; the call below reuses the trace
            self.mode = chunk_mode(self.one.trace(state, *one_args(0)).jaxpr)
        fuse = count > 1 and self.mode != "steps"
        if fuse and count not in self._programs:
            abstract = _abstract((state, *many_args))  # before the steps donate `state`
            if first_step != 0:
                self._compile(count, abstract)
        if fuse and first_step != 0:
            return self._programs[count].result()(state, *many_args)
        for i in range(count):
            state = self.one(state, *one_args(i))
        if fuse and count not in self._programs:
            # only once this chunk's results are ready: tracing and lowering the fused
            # program in the background hold the GIL and the CPU for long stretches,
            # which held back the chunk's own steps (first results 0.13 s later for an
            # MLP at spe 8) while the chunk itself lasts milliseconds
            jax.block_until_ready(state)
            self._compile(count, abstract)
        return state

    def _compile(self, count: int, abstract: tuple) -> None:
        """Start compiling the fused program for `count` steps in the background thread
        (from shapes, dtypes and shardings only)."""
        jitted = self.fused(count, self.mode)
        self._programs[count] = worker("compile").submit(
            lambda: jitted.trace(*abstract).lower().compile()
        )


def _abstract(args: Any) -> Any:
    """Shape, dtype, weak type and sharding of every array (no reference to buffers the
    steps will donate)."""

    def spec(a: Any) -> Any:
        if not isinstance(a, jax.Array):
            return a
        weak = getattr(a, "weak_type", False)  # key arrays have none
        return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding, weak_type=weak)

    return jax.tree_util.tree_map(spec, args)
