"""Shared by the `.keras` export/import tests: sessions with random weights, random
inputs for the device model, and our forward pass."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from modelspec.compiler.host_layers import device_input_types
from modelspec.runtime.session import open_session
from modelspec.runtime.steps import model_state


def random_session(source: Any, overrides: list[str] | tuple = (), seed: int = 0):
    """A session for `source` and a state whose every weight is random (biases and
    batch statistics included, so each one matters to the outputs)."""
    session = open_session(source, list(overrides), data=False)
    rng = np.random.default_rng(seed)

    def rand(path, x):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            return x
        # the initial weights (so activations keep their scale) moved a little: biases
        # and statistics are then nonzero and each one matters to the outputs
        value = np.asarray(x, np.float32)
        value = value + rng.normal(size=x.shape).astype(np.float32) * 0.05 * max(value.std(), 0.2)
        if "variance" in jax.tree_util.keystr(path):
            value = np.abs(value) + 0.5
        if "bin_boundaries" in jax.tree_util.keystr(path):  # boundaries stay sorted
            value = np.sort(value)
        return jnp.asarray(value, x.dtype)

    state = session.state
    state = state._replace(
        params=jax.tree_util.tree_map_with_path(rand, state.params),
        batch_stats=jax.tree_util.tree_map_with_path(rand, state.batch_stats),
        frozen=jax.tree_util.tree_map_with_path(rand, state.frozen),
    )
    return session, state


def device_inputs(spec, batch: int = 3, int_high: int = 5, seed: int = 1) -> dict[str, np.ndarray]:
    """Random arrays for the device model's inputs (host layers' outputs included)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, t in device_input_types(spec).items():
        shape = (batch, *(4 if d is None else d for d in t.shape[1:]))
        if t.dtype.startswith(("int", "uint")):
            out[name] = rng.integers(0, int_high, shape).astype(t.dtype)
        elif t.dtype == "bool":
            out[name] = rng.integers(0, 2, shape).astype(bool)
        else:
            out[name] = rng.normal(size=shape).astype(t.dtype)
    return out


def ours(session, state, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our inference outputs, by output name."""
    out, _ = model_state(session.graphdef, state).apply(
        {k: jnp.asarray(v) for k, v in x.items()}, training=False
    )
    return {k: np.asarray(v) for k, v in out.items()}
