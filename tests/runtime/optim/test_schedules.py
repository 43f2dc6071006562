"""Learning-rate schedules: specs validate like Keras's constructors, and
`build_schedule` returns Keras's values (Keras on the JAX backend is the oracle)."""

import inspect
import subprocess
import sys

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from modelspec.runtime.optim.schedules import build_schedule
from modelspec.schema.schedules import SCHEDULE_TYPES, LearningRate, Schedule

SCHEDULE = TypeAdapter(Schedule)


def _case(type_: str, **args) -> dict:
    """A schedule case; most start at a learning rate of 0.1, so a case names only the
    arguments it sets (in Keras's order, which the test ids show)."""
    return {"type": type_, "initial_learning_rate": 0.1, **args}


CASES = [
    _case("ExponentialDecay", decay_steps=10, decay_rate=0.9),
    _case("ExponentialDecay", decay_steps=10, decay_rate=0.5, staircase=True),
    dict(type="PiecewiseConstantDecay", boundaries=[5, 10], values=[1.0, 0.5, 0.1]),
    dict(type="PiecewiseConstantDecay", boundaries=[3], values=[0.3, 0.03]),
    _case("PolynomialDecay", decay_steps=10),
    _case("PolynomialDecay", decay_steps=10, end_learning_rate=0.01, power=2.0, cycle=True),
    _case("PolynomialDecay", decay_steps=10, end_learning_rate=0.01, power=0.5),
    _case("InverseTimeDecay", decay_steps=10, decay_rate=0.5),
    _case("InverseTimeDecay", decay_steps=10, decay_rate=0.5, staircase=True),
    _case("CosineDecay", decay_steps=10),
    _case("CosineDecay", decay_steps=10, alpha=0.1),
    _case(
        "CosineDecay",
        initial_learning_rate=0.0,
        decay_steps=10,
        alpha=0.1,
        warmup_target=0.2,
        warmup_steps=5,
    ),
    _case(
        "CosineDecay", initial_learning_rate=0.05, decay_steps=10, warmup_target=0.2, warmup_steps=0
    ),
    _case("CosineDecayRestarts", first_decay_steps=5),
    _case("CosineDecayRestarts", first_decay_steps=5, t_mul=1.0, m_mul=0.5, alpha=0.1),
    _case("CosineDecayRestarts", first_decay_steps=4, t_mul=1.5, m_mul=0.8, alpha=0.05),
]


def _steps(case: dict) -> list[int]:
    """0, 1, every step around the warmup / decay / restart boundaries, and beyond."""
    marks = [case.get(k, 0) for k in ("decay_steps", "first_decay_steps", "warmup_steps")]
    marks += list(case.get("boundaries", []))
    marks.append(case.get("decay_steps", 0) + case.get("warmup_steps", 0))
    steps = {0, 1, 2, 3, 30, 99, 100, 1000, 12345}
    for m in marks:
        steps |= {max(m - 1, 0), m, m + 1, 2 * m, 3 * m}
    return sorted(steps)


def _keras(case: dict):
    args = {k: v for k, v in case.items() if k != "type"}
    return getattr(keras.optimizers.schedules, case["type"])(**args)


def _id(case: dict) -> str:
    args = ",".join(f"{k}={v}" for k, v in case.items() if k != "type")
    return f"{case['type']}({args})"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_keras(case):
    """Keras's schedule runs under jit, as in `fit`'s train step (eagerly its `ops.cond`
    recompiles on every call). Ours is checked under jit and eagerly on all steps at
    once; float32 rounding differs only in the last bits between the two."""
    spec = SCHEDULE.validate_python(case)
    ours = build_schedule(spec)
    theirs = jax.jit(_keras(case))
    steps = _steps(case)
    expected = np.array([float(theirs(jnp.int32(s))) for s in steps])
    # Jitted Keras PolynomialDecay with a fractional power is NaN from `decay_steps` on
    # (see test_polynomial_decay_fractional_power_is_finite_under_jit): use eager there.
    for i in np.flatnonzero(np.isnan(expected)):
        expected[i] = float(_keras(case)(jnp.int32(steps[i])))
    ours_jit = jax.jit(ours)
    actual_jit = np.array([float(ours_jit(jnp.int32(s))) for s in steps])
    actual_eager = np.asarray(ours(jnp.asarray(steps, jnp.int32)))
    for actual, how in [(actual_jit, "jit"), (actual_eager, "eager")]:
        # Relative 1e-6, plus an absolute 1e-8 (1e-7 of the initial rate) for values
        # that decayed to near zero, where the last-bit differences are relatively large.
        np.testing.assert_allclose(
            actual, expected, rtol=1e-6, atol=1e-8, err_msg=f"{how}; steps {steps}"
        )


def test_eager_values_equal_eager_keras():
    """Spot check without jit on either side: the same operations, the same numbers."""
    for case in CASES[::3]:
        ours, theirs = build_schedule(SCHEDULE.validate_python(case)), _keras(case)
        for step in (0, 1, 7, 10, 25):
            s = jnp.int32(step)
            np.testing.assert_allclose(float(ours(s)), float(theirs(s)), rtol=1e-6)


def test_every_schedule_type_is_covered():
    assert {c["type"] for c in CASES} == set(SCHEDULE_TYPES)


def test_constant_learning_rate():
    fn = jax.jit(build_schedule(0.125))
    assert fn(jnp.int32(0)).dtype == jnp.float32
    assert float(fn(jnp.int32(7))) == 0.125


def test_polynomial_decay_fractional_power_is_finite_under_jit():
    """Keras's jitted PolynomialDecay gives NaN at `step >= decay_steps` with a
    fractional power (an FMA makes `1 - p` slightly negative); ours does not."""
    spec = SCHEDULE.validate_python(
        dict(type="PolynomialDecay", initial_learning_rate=0.1, decay_steps=10, power=0.5)
    )
    fn = jax.jit(build_schedule(spec))
    for step in (10, 11, 1000):
        assert float(fn(jnp.int32(step))) == pytest.approx(1e-4, rel=1e-6)


def test_defaults_match_keras_signatures():
    for name, model in SCHEDULE_TYPES.items():
        params = inspect.signature(getattr(keras.optimizers.schedules, name)).parameters
        for field_name, field in model.model_fields.items():
            if field_name == "type":
                continue
            assert field_name in params, f"{name}.{field_name} is not a Keras argument"
            keras_default = params[field_name].default
            if field.is_required():
                assert keras_default is inspect.Parameter.empty, f"{name}.{field_name}"
            else:
                assert field.default == keras_default, f"{name}.{field_name}"


def test_every_field_is_documented():
    schema = SCHEDULE.json_schema()
    for name, definition in schema["$defs"].items():
        for field_name, prop in definition["properties"].items():
            assert prop.get("description"), f"{name}.{field_name} has no docstring"


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(type="ExponentialDecay", initial_learning_rate=0.1, decay_steps=0, decay_rate=0.9), "greater than 0"),
        (dict(type="ExponentialDecay", initial_learning_rate=-0.1, decay_steps=5, decay_rate=0.9), "greater than or equal to 0"),
        (dict(type="ExponentialDecay", initial_learning_rate=0.1, decay_steps=5, decay_rate=0.9, stair=True), "Extra inputs"),
        (dict(type="ExpDecay", initial_learning_rate=0.1), "does not match any of the expected tags"),
        (dict(type="PiecewiseConstantDecay", boundaries=[1, 2], values=[1.0]), "one more element than `boundaries`"),
        (dict(type="PiecewiseConstantDecay", boundaries=[3, 2], values=[1.0, 0.5, 0.1]), "strictly increasing"),
        (dict(type="PolynomialDecay", initial_learning_rate=0.1), "decay_steps"),
        (dict(type="CosineDecay", initial_learning_rate=0.1, decay_steps=10, alpha=1.5), "less than or equal to 1"),
        (dict(type="CosineDecay", initial_learning_rate=0.1, decay_steps=10, warmup_steps=5), "warmup_target"),
        (dict(type="CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=-1), "greater than 0"),
    ],
)  # fmt: skip
def test_invalid_specs_raise(bad, message):
    with pytest.raises(ValidationError, match=message):
        SCHEDULE.validate_python(bad)


def test_learning_rate_accepts_number_or_schedule():
    lr = TypeAdapter(LearningRate)
    assert lr.validate_python(0.01) == 0.01
    assert lr.validate_python(CASES[0]).type == "ExponentialDecay"
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        lr.validate_python(-1.0)


def test_schema_package_imports_without_jax(root):
    code = (
        "import sys\n"
        "import modelspec.schema.schedules, modelspec.schema.optimizers\n"
        "assert 'jax' not in sys.modules and 'optax' not in sys.modules, 'jax imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
