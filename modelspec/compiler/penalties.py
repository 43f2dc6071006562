"""Regularization penalties and weight constraints, as pure functions for the jitted steps.

The spec side (`schema/regularizers.py`) says which field applies to which weight; this
module turns a checked spec into a `Penalties` table of (where, what) pairs, and computes
with Keras 3's formulas:

- weight penalties: `regularizer(w)` for every trainable weight with a regularizer
  (Keras's `Layer._get_regularization_losses` reads `trainable_weights` only);
- activity penalties: `regularizer(y) / batch_size` for every output `y` of a layer with
  an activity regularizer (Keras's `Layer.__call__`), in training and inference alike;
- constraints: `w <- constraint(w)` for every trainable weight with a constraint, right
  after each optimizer update (Keras's `BaseOptimizer.apply`).

The sum of the penalties is added to the loss exactly as Keras's `Trainer.compute_loss`
adds `model.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from modelspec.compiler.graph import output_refs
from modelspec.schema import regularizers as R
from modelspec.schema.penalty_rules import penalized

EPSILON = 1e-7
"""Keras's `backend.epsilon()` (constraints and `ops.normalize` use it)."""


def regularize(config: Any, x: jax.Array, rows: jax.Array | None = None) -> jax.Array:
    """Keras's `regularizer(x)` for a resolved config, in x's dtype. `rows`: the number
    of real rows of x when padded rows (all zero) were appended, so that an orthogonal
    penalty over rows averages over the real pairs only (zero rows add nothing else)."""
    if isinstance(config, R.L1):
        return jnp.asarray(config.l1, x.dtype) * jnp.sum(jnp.abs(x))
    if isinstance(config, R.L2):
        return jnp.asarray(config.l2, x.dtype) * jnp.sum(jnp.square(x))
    if isinstance(config, R.L1L2):
        total = jnp.zeros((), x.dtype)
        if config.l1 != 0.0:  # Keras skips a zero factor
            total = total + jnp.asarray(config.l1, x.dtype) * jnp.sum(jnp.abs(x))
        if config.l2 != 0.0:
            total = total + jnp.asarray(config.l2, x.dtype) * jnp.sum(jnp.square(x))
        return total
    if isinstance(config, R.OrthogonalRegularizer):
        return _orthogonal(config, x, rows)
    raise TypeError(f"not a regularizer: {config!r}")


def _orthogonal(config: R.OrthogonalRegularizer, x: jax.Array, rows) -> jax.Array:
    axis = 1 if config.mode == "rows" else 0
    # Keras's ops.normalize(order=2): x * min(rsqrt(sum(x^2)), 1/epsilon)
    inv = jnp.minimum(jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True)), 1 / EPSILON)
    x = x * inv
    product = x @ x.T if config.mode == "rows" else x.T @ x
    size = product.shape[0]
    off_diagonal = product * (1.0 - jnp.eye(size, dtype=x.dtype))
    n = jnp.asarray(size if rows is None or config.mode == "columns" else rows, x.dtype)
    pairs = n * (n - 1.0) / 2.0
    return jnp.asarray(config.factor, x.dtype) * 0.5 * jnp.sum(jnp.abs(off_diagonal)) / pairs


def _norms(w: jax.Array, axis: Any) -> jax.Array:
    axis = tuple(axis) if isinstance(axis, list) else axis
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


def constrain(config: Any, w: jax.Array) -> jax.Array:
    """Keras's `constraint(w)` for a resolved config."""
    if isinstance(config, R.MaxNorm):
        norms = _norms(w, config.axis)
        desired = jnp.clip(norms, 0, config.max_value)
        return w * (desired / (EPSILON + norms))
    if isinstance(config, R.MinMaxNorm):
        norms = _norms(w, config.axis)
        desired = (
            config.rate * jnp.clip(norms, config.min_value, config.max_value)
            + (1 - config.rate) * norms
        )
        return w * (desired / (EPSILON + norms))
    if isinstance(config, R.NonNeg):
        return jnp.maximum(w, 0)
    if isinstance(config, R.UnitNorm):
        return w / (EPSILON + _norms(w, config.axis))
    raise TypeError(f"not a constraint: {config!r}")


Path = tuple[str, ...]


@dataclass(frozen=True)
class Penalties:
    """What a model regularizes and constrains. Paths are into the pure `params` dict
    (`("layers", name, "kernel")`); activity entries name the tensors (graph refs) whose
    values the forward pass must hand back (`taps`)."""

    weights: tuple[tuple[Path, Any], ...] = ()
    activity: tuple[tuple[str, Any], ...] = ()
    constraints: tuple[tuple[Path, Any], ...] = ()

    @property
    def regularized(self) -> bool:
        """Whether any penalty is added to the loss (a `regularization_loss` is logged)."""
        return bool(self.weights or self.activity)

    @property
    def taps(self) -> tuple[str, ...]:
        """The tensors (graph refs) the activity penalties read."""
        return tuple(dict.fromkeys(ref for ref, _ in self.activity))

    def loss(self, params: Any, values: dict[str, jax.Array], mask: jax.Array | None) -> jax.Array:
        """The sum of all penalties (float32). `values` holds the tapped tensors;
        `mask` (batch,) marks real rows of a padded last batch: padded rows are left out
        and the activity penalties divide by the number of real rows, as Keras's smaller
        last batch does."""
        total = jnp.zeros((), jnp.float32)
        for ref, config in self.activity:
            total = total + _activity(config, values[ref], mask).astype(jnp.float32)
        for path, config in self.weights:
            total = total + regularize(config, _get(params, path)).astype(jnp.float32)
        return total

    def constrain(self, params: Any) -> Any:
        """`params` with every constraint applied (a new dict tree; arrays not copied)."""
        if not self.constraints:
            return params
        params = _copy_dicts(params)
        for path, config in self.constraints:
            node = params
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = constrain(config, node[path[-1]]).astype(node[path[-1]].dtype)
        return params


def _activity(config: Any, y: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Keras: `regularizer(y) / batch_size` (divide_no_nan) for an output with a batch
    axis, `regularizer(y)` for a scalar."""
    if y.ndim == 0:
        return regularize(config, y)
    if mask is None:
        rows = jnp.asarray(y.shape[0], jnp.float32)
        loss = regularize(config, y)
    else:
        keep = (mask > 0).reshape((-1,) + (1,) * (y.ndim - 1))
        rows = jnp.sum(mask > 0).astype(jnp.float32)
        loss = regularize(config, jnp.where(keep, y, jnp.zeros_like(y)), rows.astype(y.dtype))
    rows = rows.astype(loss.dtype)
    return jnp.where(rows > 0, loss / jnp.where(rows > 0, rows, 1), jnp.zeros_like(loss))


def _get(tree: Any, path: Path) -> jax.Array:
    for key in path:
        tree = tree[key]
    return tree


def _copy_dicts(tree: Any) -> Any:
    return {k: _copy_dicts(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def build_penalties(spec: Any) -> Penalties:
    """The Penalties of a checked spec (its layers' regularizer and constraint fields,
    matched to their trainable weights by `schema.penalty_rules.penalized`)."""
    weights, activity, constraints = [], [], []
    for node in spec.graph.nodes:
        layer, shape = node.layer, spec.shapes[node.name]
        for _, config, p in penalized(layer, shape.params, "regularizer"):
            weights.append((("layers", node.name, *p.path.split("/")), config))
        for _, config, p in penalized(layer, shape.params, "constraint"):
            constraints.append((("layers", node.name, *p.path.split("/")), config))
        config = layer.activity_penalty()
        if config is not None:
            activity += [(ref, config) for ref in output_refs(node.name, len(shape.outputs))]
    return Penalties(tuple(weights), tuple(activity), tuple(constraints))


__all__ = ["Penalties", "build_penalties", "constrain", "regularize"]
