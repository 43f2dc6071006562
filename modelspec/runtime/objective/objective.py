"""The training objective of a spec: one loss per output (weighted), and metrics.

Everything here is pure and jit-friendly: metric states are pytrees accumulated on
device inside the step, and read by the host only when results are logged. Padded rows
of the last batch (mask 0) are excluded from losses and metrics, so a padded batch
counts exactly like Keras's smaller last batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.output_keys import output_key_errors
from modelspec.compiler.penalties import Penalties, build_penalties
from modelspec.errors import SpecError
from modelspec.runtime.objective.losses import LossFn, build_loss
from modelspec.runtime.objective.metrics import Mean, MetricFn, build_metrics

REGULARIZATION = "regularization_loss"
"""The logged name of the penalties' mean per sample (part of `loss`, as in Keras)."""


def losses_by_output(spec: CheckedSpec) -> dict[str, Any]:
    """`loss:` as output name -> loss spec (a single loss applies to every output)."""
    outputs = spec.graph.outputs
    if spec.loss is None:
        raise spec.missing(
            "loss",
            "training needs a loss",
            hint="Add e.g. `loss: {type: SparseCategoricalCrossentropy, from_logits: true}`.",
        )
    errors = output_key_errors(spec.spec, outputs, spec.locate)  # also checked by load
    if errors:
        raise SpecError(errors)
    if isinstance(spec.loss, dict):
        return dict(spec.loss)
    return dict.fromkeys(outputs, spec.loss)


@dataclass(frozen=True)
class Objective:
    losses: dict[str, LossFn]
    weights: dict[str, float]
    metrics: dict[str, list[MetricFn]]
    loss_mean: Mean
    penalties: Penalties = Penalties()
    """The layers' regularizers and constraints: their sum is part of `loss` (as in
    Keras) and is logged on its own as `regularization_loss`."""

    def total_loss(
        self,
        outputs: dict[str, jax.Array],
        targets: dict[str, jax.Array],
        mask: jax.Array,
        output_masks: dict[str, jax.Array] | None = None,
    ) -> jax.Array:
        """The weighted sum of the outputs' losses. `output_masks` are the Keras masks of
        masked outputs (e.g. padded time steps): as in Keras they join the padding and
        `ignore_class` masks, so `sum_over_batch_size` divides by the unmasked count."""
        total = jnp.float32(0.0)
        for name, loss in self.losses.items():
            values, keep = loss.per_sample_with_mask(targets[name], outputs[name])
            row = _expand(mask > 0, values.shape)
            keep = row if keep is None else (keep & row)
            if output_masks and name in output_masks:
                keep = keep & _widen(output_masks[name], values.shape)
            total = total + self.weights[name] * loss.reduce(values, None, keep)
        return total

    def init_metrics(self) -> dict[str, Any]:
        state = {"loss": self.loss_mean.init()}
        if self.penalties.regularized:
            state[REGULARIZATION] = self.loss_mean.init()
        for out, fns in self.metrics.items():
            for fn in fns:
                state[self.key(out, fn)] = fn.init()
        return state

    def key(self, output: str, fn: MetricFn) -> str:
        return fn.name if len(self.metrics) == 1 else f"{output}_{fn.name}"

    def update_metrics(
        self, state, loss, outputs, targets, mask, regularization=None, output_masks=None
    ) -> dict[str, Any]:
        """Accumulate a batch; `loss` is the total (penalties included), `regularization`
        the penalties alone (None: the model has none). `output_masks` (Keras masks of
        masked outputs) weight the metrics that Keras masks: the MeanMetricWrapper ones
        (accuracies, losses as metrics), not the confusion-matrix or regression ones."""
        new = dict(state)
        new["loss"] = self.loss_mean.update(state["loss"], loss, jnp.sum(mask))
        if regularization is not None and REGULARIZATION in state:
            new[REGULARIZATION] = self.loss_mean.update(
                state[REGULARIZATION], regularization, jnp.sum(mask)
            )
        for out, fns in self.metrics.items():
            weight = _expand(mask, targets[out].shape[:1] if targets[out].ndim else ())
            masked = None
            if output_masks and out in output_masks:
                step_mask = output_masks[out]
                masked = _expand(mask, step_mask.shape) * step_mask.astype(jnp.float32)
            for fn in fns:
                k = self.key(out, fn)
                w = masked if masked is not None and fn.uses_mask else weight
                new[k] = fn.update(state[k], targets[out], outputs[out], w)
        return new

    def results(self, state) -> dict[str, jax.Array]:
        out = {"loss": self.loss_mean.result(state["loss"])}
        if REGULARIZATION in state:
            out[REGULARIZATION] = self.loss_mean.result(state[REGULARIZATION])
        for o, fns in self.metrics.items():
            for fn in fns:
                k = self.key(o, fn)
                out[k] = fn.result(state[k])
        return out


def _widen(mask: jax.Array, shape) -> jax.Array:
    """A Keras output mask (e.g. (batch, steps)) broadcast to per-sample loss values."""
    return jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim)), shape)


def _expand(mask: jax.Array, shape) -> jax.Array:
    """Broadcast a per-row mask (batch,) to per-sample values (batch, ...)."""
    return jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - 1)), shape)


def build_objective(spec: CheckedSpec) -> Objective:
    an = spec
    per_output = losses_by_output(spec)
    losses = {name: build_loss(s) for name, s in per_output.items()}
    weights = {name: float((spec.loss_weights or {}).get(name, 1.0)) for name in losses}
    outputs = {name: an.output_type(name) for name in losses}
    metric_specs = spec.metrics
    if isinstance(metric_specs, list):
        metric_specs = {name: metric_specs for name in losses}
    metrics: dict[str, list[MetricFn]] = {}
    for out, specs in metric_specs.items():
        shape = outputs[out].shape if outputs[out] is not None else None
        try:
            metrics[out] = build_metrics(
                specs, per_output[out], y_pred_shape=shape, y_true_shape=shape
            )
        except ValueError as exc:
            raise SpecError.single(spec.error(("metrics",), str(exc))) from None
    return Objective(losses, weights, metrics, Mean(), build_penalties(spec))
