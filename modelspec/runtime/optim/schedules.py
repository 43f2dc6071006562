"""Learning-rate schedules as jittable `step -> learning rate` functions (optax.Schedule).

Why not optax's own schedules: a spec says "Keras's CosineDecay", so the numbers must be
Keras's, and optax's equivalents differ in the details (warmup end points, staircase,
`cycle`, restart arithmetic). Each function below transcribes the `__call__` of the
corresponding class in keras/src/optimizers/schedules/learning_rate_schedule.py,
operation for operation and in float32 (Keras's `floatx`), so the values agree with Keras
to float32 rounding (bit-identical when both run eagerly or both under jit; XLA's
fusion changes the last bits between the two). One deliberate difference: PolynomialDecay
never returns NaN at the end of its decay (see `polynomial_decay`). The step is the
optimizer's `iterations` count (steps already applied), exactly what Keras passes. Each
schedule spec names its function here in its `builder` class variable.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from modelspec.schema.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
    Schedule,
    ScheduleSpec,
)
from modelspec.schema.vocabulary import load_reference

F32 = jnp.float32


def _f32(x: float) -> jax.Array:
    return jnp.asarray(x, dtype=F32)


def _decay_progress(step: jax.Array, decay_steps: int, staircase: bool) -> jax.Array:
    """`step / decay_steps` in float32, floored with `staircase`: the exponent of
    `ExponentialDecay` and the ratio of `InverseTimeDecay`, computed alike by Keras."""
    p = jnp.asarray(step).astype(F32) / _f32(decay_steps)
    return jnp.floor(p) if staircase else p


def build_schedule(spec: float | Schedule) -> optax.Schedule:
    """A jittable `step -> float32 learning rate` function equal to the Keras schedule
    (or a constant for a plain number). `step` is Keras's `optimizer.iterations`."""
    if isinstance(spec, int | float):
        value = float(spec)
        return lambda step: _f32(value)
    if not isinstance(spec, ScheduleSpec):
        raise TypeError(f"build_schedule expects a number or a schedule spec; received {spec!r}")
    return load_reference(spec.builder)(spec)


def exponential_decay(spec: ExponentialDecay) -> optax.Schedule:
    """Keras `ExponentialDecay.__call__` as a jittable function of the step."""

    def schedule(step: jax.Array) -> jax.Array:
        p = _decay_progress(step, spec.decay_steps, spec.staircase)
        return _f32(spec.initial_learning_rate) * jnp.power(_f32(spec.decay_rate), p)

    return schedule


def piecewise_constant_decay(spec: PiecewiseConstantDecay) -> optax.Schedule:
    """Keras `PiecewiseConstantDecay.__call__` as a jittable function of the step."""
    boundaries = list(spec.boundaries)
    values = [_f32(v) for v in spec.values]

    def schedule(step: jax.Array) -> jax.Array:
        step = jnp.asarray(step)
        bounds = [jnp.asarray(b).astype(step.dtype) for b in boundaries]
        result = jnp.zeros((), F32)
        result += (step <= bounds[0]).astype(F32) * values[0]
        result += (step > bounds[-1]).astype(F32) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1], strict=True):
            result += ((step > low) & (step <= high)).astype(F32) * value
        return result

    return schedule


def polynomial_decay(spec: PolynomialDecay) -> optax.Schedule:
    """Keras `PolynomialDecay.__call__` as a jittable function of the step."""

    def schedule(step: jax.Array) -> jax.Array:
        lr0 = _f32(spec.initial_learning_rate)
        end = _f32(spec.end_learning_rate)
        power = _f32(spec.power)
        step_f = jnp.asarray(step).astype(F32)
        decay_steps = _f32(spec.decay_steps)
        if spec.cycle:
            multiplier = jnp.where(step_f == 0, 1.0, jnp.ceil(step_f / spec.decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            step_f = jnp.minimum(step_f, decay_steps)
        p = step_f / decay_steps
        # `1 - p` is >= 0 mathematically, but under jit XLA contracts it into an FMA
        # that gives -1.5e-8 at `step == decay_steps`, and a fractional `power` then
        # turns the learning rate into NaN (Keras's jitted schedule does). Clamping
        # changes nothing else: eager values stay bit-identical to Keras's.
        return (lr0 - end) * jnp.power(jnp.maximum(1 - p, 0.0), power) + end

    return schedule


def inverse_time_decay(spec: InverseTimeDecay) -> optax.Schedule:
    """Keras `InverseTimeDecay.__call__` as a jittable function of the step."""

    def schedule(step: jax.Array) -> jax.Array:
        p = _decay_progress(step, spec.decay_steps, spec.staircase)
        return _f32(spec.initial_learning_rate) / (_f32(1.0) + _f32(spec.decay_rate) * p)

    return schedule


def cosine_decay(spec: CosineDecay) -> optax.Schedule:
    """Keras `CosineDecay.__call__` as a jittable function of the step."""
    alpha = spec.alpha

    def decay(step: jax.Array, decay_steps: jax.Array, decay_from: jax.Array) -> jax.Array:
        completed = step / decay_steps
        cosine = 0.5 * (1.0 + jnp.cos(_f32(math.pi) * completed))
        return decay_from * ((1 - alpha) * cosine + alpha)

    def schedule(step: jax.Array) -> jax.Array:
        lr0 = _f32(spec.initial_learning_rate)
        decay_steps = _f32(spec.decay_steps)
        step_f = jnp.asarray(step).astype(F32)
        if spec.warmup_target is None:
            return decay(jnp.minimum(step_f, decay_steps), decay_steps, lr0)
        target = _f32(spec.warmup_target)
        warmup_steps = _f32(spec.warmup_steps)
        step_f = jnp.minimum(step_f, decay_steps + warmup_steps)
        # Keras uses `ops.cond`; `where` gives the same values, is cheap eagerly and
        # works on a vector of steps. The max() only guards the branch that is not
        # taken when warmup_steps == 0.
        warmup = (target - lr0) * (step_f / jnp.maximum(warmup_steps, 1.0)) + lr0
        return jnp.where(
            step_f < warmup_steps, warmup, decay(step_f - warmup_steps, decay_steps, target)
        )

    return schedule


def cosine_decay_restarts(spec: CosineDecayRestarts) -> optax.Schedule:
    """Keras `CosineDecayRestarts.__call__` as a jittable function of the step."""
    # Keras picks the branch with `ops.cond(t_mul == 1.0)` on the float32 value; the
    # value is a constant here, so the same test is made once, in Python.
    geometric = np.float32(spec.t_mul) != np.float32(1.0)

    def schedule(step: jax.Array) -> jax.Array:
        lr0 = _f32(spec.initial_learning_rate)
        alpha = _f32(spec.alpha)
        t_mul = _f32(spec.t_mul)
        m_mul = _f32(spec.m_mul)
        completed = jnp.asarray(step).astype(F32) / _f32(spec.first_decay_steps)
        if geometric:
            i_restart = jnp.floor(jnp.log(1.0 - completed * (1.0 - t_mul)) / jnp.log(t_mul))
            sum_r = (1.0 - jnp.power(t_mul, i_restart)) / (1.0 - t_mul)
            completed = (completed - sum_r) / jnp.power(t_mul, i_restart)
        else:
            i_restart = jnp.floor(completed)
            completed = completed - i_restart
        m_fac = jnp.power(m_mul, i_restart)
        cosine = 0.5 * m_fac * (1.0 + jnp.cos(_f32(math.pi) * completed))
        return lr0 * ((1 - alpha) * cosine + alpha)

    return schedule
