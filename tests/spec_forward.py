"""Running a spec's compiled model on random inputs, as the tests that compare whole
specs with Keras models do (tests/test_zoo.py, tests/test_keras_io_ports.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from modelspec.compiler.model import apply

_jitted_apply = jax.jit(apply, static_argnames="training")


def random_inputs(spec, batch: int, rng: np.random.Generator, int_high: int) -> dict:
    """One array per model input, (batch, *shape) in its dtype: integers in
    [0, int_high) (ids, below every vocabulary size the specs use), normal floats."""
    out = {}
    for name, inp in spec.model.inputs.items():
        shape = (batch, *inp.shape)
        if inp.dtype.startswith("int"):
            out[name] = rng.integers(0, int_high, shape).astype(inp.dtype)
        else:
            out[name] = rng.normal(size=shape).astype(inp.dtype)
    return out


def forward(state, x: dict, *, training: bool) -> dict:
    """The jitted forward pass of the split model on the numpy inputs `x`: its outputs."""
    outputs, _, _ = _jitted_apply(
        state.graphdef,
        state.params,
        state.batch_stats,
        state.rng,
        state.frozen,
        {k: jnp.asarray(v) for k, v in x.items()},
        training=training,
    )
    return outputs
