"""Optimizers: specs validate like Keras's constructors, and `build_optimizer` moves the
weights exactly as Keras 3's `optimizer.apply` does (Keras on the JAX backend is the
oracle), step by step, including clipping, weight decay, schedules, gradient
accumulation and EMA."""

import inspect

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
from flax import nnx
from pydantic import TypeAdapter, ValidationError

from modelspec.runtime.optim.optimizers import (
    KerasOptimizerState,
    build_optimizer,
    current_learning_rate,
    ema_params,
    get_lr_scale,
    iterations,
    param_path,
    set_lr_scale,
    weight_decay_mask,
)
from modelspec.schema.optimizers import OPTIMIZER_TYPES, Optimizer

OPTIMIZER = TypeAdapter(Optimizer)
SHAPES = {"kernel": (3, 4), "bias": (4,)}
EXPO = dict(type="ExponentialDecay", initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5)
PIECEWISE = dict(type="PiecewiseConstantDecay", boundaries=[1, 3], values=[0.1, 0.05, 0.01])
WARMUP = dict(
    type="CosineDecay", initial_learning_rate=0.0, decay_steps=4, warmup_target=0.1, warmup_steps=2
)

CASES = [
    dict(type="SGD"),
    dict(type="SGD", momentum=0.9),
    dict(type="SGD", momentum=0.9, nesterov=True, learning_rate=0.1),
    dict(type="Adam"),
    dict(type="Adam", amsgrad=True, learning_rate=0.1),
    dict(type="AdamW", learning_rate=0.1, weight_decay=0.1),
    dict(type="RMSprop"),
    dict(type="RMSprop", momentum=0.5, centered=True, learning_rate=0.1),
    dict(type="Adagrad", learning_rate=0.1),
    dict(type="Adadelta", learning_rate=1.0),
    dict(type="Adamax", learning_rate=0.1),
    dict(type="Nadam", learning_rate=0.1),
    dict(type="Lion", learning_rate=0.1),
    dict(type="Lamb", learning_rate=0.1, weight_decay=0.1),
    dict(type="Adafactor", learning_rate=0.1),
    # Clipping (the three Keras flavours).
    dict(type="Adam", clipnorm=0.5),
    dict(type="Adam", global_clipnorm=0.5, learning_rate=0.1),
    dict(type="SGD", clipvalue=0.3, learning_rate=0.1),
    # Weight decay, with exclusion, on optimizers that are not AdamW too.
    dict(type="AdamW", learning_rate=0.1, weight_decay=0.1, exclude_from_weight_decay=["bias"]),
    dict(type="SGD", momentum=0.5, learning_rate=0.1, weight_decay=0.2, clipnorm=1.0),
    dict(type="Adafactor", learning_rate=0.1, weight_decay=0.1),
    # Schedules as learning rate.
    dict(type="SGD", learning_rate=EXPO),
    dict(type="AdamW", learning_rate=WARMUP, weight_decay=0.1),
    # Gradient accumulation (with schedule, weight decay and Nadam's extra state).
    dict(type="Adam", learning_rate=0.1, gradient_accumulation_steps=2, global_clipnorm=0.1),
    dict(type="Nadam", learning_rate=PIECEWISE, gradient_accumulation_steps=2, weight_decay=0.1),
    # EMA, with and without periodic overwrite and accumulation.
    dict(type="Adam", learning_rate=0.1, use_ema=True, ema_momentum=0.5),
    dict(type="RMSprop", learning_rate=0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2),
    dict(
        type="SGD",
        learning_rate=0.1,
        use_ema=True,
        ema_momentum=0.5,
        ema_overwrite_frequency=2,
        gradient_accumulation_steps=2,
    ),
]  # fmt: skip


def _keras_optimizer(case: dict):
    args = {k: v for k, v in case.items() if k not in ("type", "exclude_from_weight_decay")}
    if isinstance(args.get("learning_rate"), dict):
        schedule = dict(args["learning_rate"])
        args["learning_rate"] = getattr(keras.optimizers.schedules, schedule.pop("type"))(
            **schedule
        )
    optimizer = getattr(keras.optimizers, case["type"])(**args)
    if case.get("exclude_from_weight_decay"):
        optimizer.exclude_from_weight_decay(var_names=case["exclude_from_weight_decay"])
    return optimizer


def _data(shapes: dict, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    init = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    grads = [
        {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()} for _ in range(steps)
    ]
    return init, grads


def _jitted_step(tx):
    def step(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step)


def _run_both(case: dict, shapes: dict = SHAPES, steps: int = 5):
    """Apply the same gradients with Keras and with ours; yield both after every step."""
    init, grads = _data(shapes, steps)
    names = list(shapes)
    k_opt = _keras_optimizer(case)
    k_vars = [keras.Variable(init[n], name=n) for n in names]
    tx = build_optimizer(OPTIMIZER.validate_python(case))
    params = {n: jnp.asarray(v) for n, v in init.items()}
    state = tx.init(params)
    step = _jitted_step(tx)
    for i, g in enumerate(grads):
        k_opt.apply([g[n] for n in names], k_vars)
        params, state = step(g, state, params)
        yield i, k_opt, dict(zip(names, k_vars, strict=True)), params, state


def _close(actual, expected, what: str) -> None:
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=1e-6, err_msg=what
    )


def _id(case: dict) -> str:
    extras = ",".join(
        f"{k}={v['type'] if isinstance(v, dict) else v}" for k, v in case.items() if k != "type"
    )
    return f"{case['type']}({extras})"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_keras_step_by_step(case):
    for i, k_opt, k_vars, params, state in _run_both(case):
        for name, k_var in k_vars.items():
            _close(params[name], k_var.value, f"{name} after step {i + 1}")
        if case.get("use_ema"):
            for name, average in zip(k_vars, k_opt._model_variables_moving_average, strict=True):
                _close(ema_params(state)[name], average.value, f"EMA {name} after step {i + 1}")
    assert iterations(state) == int(k_opt._iterations.value)


def test_adafactor_factored_3d_matches_keras():
    shapes = {"kernel": (2, 3, 4), "bias": (4,)}
    for i, _, k_vars, params, _ in _run_both(dict(type="Adafactor", learning_rate=0.1), shapes):
        for name, k_var in k_vars.items():
            _close(params[name], k_var.value, f"{name} after step {i + 1}")


def test_every_optimizer_type_is_covered():
    assert {c["type"] for c in CASES} == set(OPTIMIZER_TYPES)


def test_weight_decay_exclusion_takes_effect():
    """Excluded parameters follow the no-decay trajectory; the others do not."""
    base = dict(type="SGD", learning_rate=0.1)
    runs = {}
    for label, extra in [
        ("none", {}),
        ("all", {"weight_decay": 0.5}),
        ("excl", {"weight_decay": 0.5, "exclude_from_weight_decay": ["bias"]}),
    ]:
        *_, (_, _, _, params, _) = _run_both({**base, **extra}, steps=3)
        runs[label] = params
    _close(runs["excl"]["bias"], runs["none"]["bias"], "excluded bias")
    _close(runs["excl"]["kernel"], runs["all"]["kernel"], "decayed kernel")
    assert not np.allclose(runs["all"]["bias"], runs["none"]["bias"])


def test_param_paths_and_mask_on_nnx_state():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(3, 4, rngs=rngs)
            self.norm = nnx.LayerNorm(4, rngs=rngs)

    _, state = nnx.split(Net(nnx.Rngs(0)), nnx.Param)
    paths = jax.tree_util.tree_map_with_path(lambda p, _: param_path(p), state)
    assert jax.tree.leaves(paths) == ["dense/bias", "dense/kernel", "norm/bias", "norm/scale"]
    mask = weight_decay_mask(state, ["bias", "norm/scale"])
    assert jax.tree.leaves(mask) == [False, True, False, False]
    pure = weight_decay_mask(nnx.to_pure_dict(state), ["bias"])
    assert pure == {
        "dense": {"bias": False, "kernel": True},
        "norm": {"bias": False, "scale": True},
    }


def test_nnx_state_params_and_nnx_optimizer():
    """An `nnx.State` of Params gives the same result as the plain dict, also through
    `nnx.Optimizer`; the lr-scale and EMA helpers work on its wrapped opt_state."""

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(3, 4, rngs=rngs)

    spec = OPTIMIZER.validate_python(
        dict(
            type="AdamW",
            learning_rate=0.1,
            weight_decay=0.5,
            exclude_from_weight_decay=["bias"],
            use_ema=True,
        )
    )
    tx = build_optimizer(spec)
    step = _jitted_step(tx)
    model = Net(nnx.Rngs(0))
    _, state = nnx.split(model, nnx.Param)
    grads = jax.tree.map(jnp.ones_like, state)
    pure_grads = nnx.to_pure_dict(grads)
    expected = nnx.to_pure_dict(state)
    dict_state, nnx_state = tx.init(expected), tx.init(state)
    for _ in range(2):
        state, nnx_state = step(grads, nnx_state, state)
        expected, dict_state = step(pure_grads, dict_state, expected)
    jax.tree.map(lambda a, b: _close(a, b, "nnx.State vs dict"), nnx.to_pure_dict(state), expected)

    # The same through nnx.Optimizer, whose opt_state wraps every leaf in a Variable;
    # a third step after halving the learning rate must see the new scale.
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    for _ in range(2):
        optimizer.update(model, grads)
    optimizer.opt_state = set_lr_scale(optimizer.opt_state, 0.5)
    assert get_lr_scale(optimizer.opt_state) == 0.5
    optimizer.update(model, grads)
    expected, dict_state = step(pure_grads, set_lr_scale(dict_state, 0.5), expected)
    jax.tree.map(
        lambda a, b: _close(a, b, "nnx.Optimizer"), nnx.to_pure_dict(nnx.state(model)), expected
    )
    averaged = ema_params(optimizer.opt_state)
    jax.tree.map(
        lambda a, b: _close(a, b, "EMA via nnx"), nnx.to_pure_dict(averaged), ema_params(dict_state)
    )
    nnx.update(model, averaged)
    _close(model.dense.bias[...], averaged["dense"]["bias"], "EMA swapped in")


def test_lr_scale_matches_keras_setting_the_learning_rate_and_does_not_recompile():
    """ReduceLROnPlateau sets Keras's `optimizer.learning_rate`; we set `lr_scale`."""
    case = dict(type="SGD", momentum=0.9, learning_rate=0.1, weight_decay=0.1)
    init, grads = _data(SHAPES, 4)
    k_opt = _keras_optimizer(case)
    k_vars = [keras.Variable(init[n], name=n) for n in SHAPES]
    tx = build_optimizer(OPTIMIZER.validate_python(case))
    params = {n: jnp.asarray(v) for n, v in init.items()}
    state = tx.init(params)
    traces = 0

    def step(grads, state, params):
        nonlocal traces
        traces += 1
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step)
    for i, g in enumerate(grads):
        if i == 2:
            k_opt.learning_rate = 0.1 * 0.25
            state = set_lr_scale(state, 0.25)
        k_opt.apply([g[n] for n in SHAPES], k_vars)
        params, state = step(g, state, params)
        for name, k_var in zip(SHAPES, k_vars, strict=True):
            _close(params[name], k_var.value, f"{name} after step {i + 1}")
    assert traces == 1
    spec = OPTIMIZER.validate_python(case)
    assert float(current_learning_rate(state, spec)) == pytest.approx(0.025)
    _close(current_learning_rate(state, spec), k_opt.learning_rate, "scaled learning rate")


def test_current_learning_rate_follows_keras_schedule():
    case = dict(type="Adam", learning_rate=WARMUP)
    spec = OPTIMIZER.validate_python(case)
    for _, k_opt, _, _, state in _run_both(case, steps=5):
        _close(current_learning_rate(state, spec), k_opt.learning_rate, "learning rate")


def test_state_layout_is_readable():
    spec = OPTIMIZER.validate_python(dict(type="Adam", clipnorm=1.0, use_ema=True))
    state = build_optimizer(spec).init({"w": jnp.zeros((2,))})
    assert isinstance(state, KerasOptimizerState)
    assert list(state.transforms) == ["clip", "adam"]
    assert state.transforms["adam"]._fields == ("momentum", "velocity", "velocity_hat")
    assert state.accumulated_grads is None
    assert ema_params(state)["w"].shape == (2,)
    no_ema = build_optimizer(OPTIMIZER.validate_python(dict(type="SGD")))
    assert ema_params(no_ema.init({"w": jnp.zeros((2,))})) is None


def test_update_without_params_is_an_error():
    tx = build_optimizer(OPTIMIZER.validate_python(dict(type="SGD")))
    params = {"w": jnp.zeros((2,))}
    with pytest.raises(ValueError, match="params"):
        tx.update(params, tx.init(params))


def test_defaults_match_keras_signatures():
    for name, model in OPTIMIZER_TYPES.items():
        params = inspect.signature(getattr(keras.optimizers, name)).parameters
        for field_name, field in model.model_fields.items():
            if field_name in ("type", "exclude_from_weight_decay"):
                continue
            assert field_name in params, f"{name}.{field_name} is not a Keras argument"
            assert field.default == params[field_name].default, f"{name}.{field_name}"


def test_every_field_is_documented():
    for name, definition in OPTIMIZER.json_schema()["$defs"].items():
        for field_name, prop in definition["properties"].items():
            assert prop.get("description"), f"{name}.{field_name} has no docstring"


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(type="Adam", learning_rate=-0.1), "greater than or equal to 0"),
        (dict(type="Adam", learnin_rate=0.1), "Extra inputs"),
        (dict(type="Adamm"), "does not match any of the expected tags"),
        (dict(type="Adam", clipnorm=1.0, global_clipnorm=1.0), "Only one of"),
        (dict(type="SGD", clipvalue=1.0, clipnorm=1.0), "Only one of"),
        (dict(type="Adam", gradient_accumulation_steps=1), "greater than or equal to 2"),
        (dict(type="Adam", use_ema=True, ema_momentum=1.5), "less than or equal to 1"),
        (dict(type="SGD", momentum=1.5), "less than or equal to 1"),
        (dict(type="Lion", beta_1=0.0), "greater than 0"),
        (dict(type="Adam", beta_1=1.0), "less than 1"),
        (dict(type="Adam", learning_rate=dict(type="CosineDecay", initial_learning_rate=0.1)), "decay_steps"),
    ],
)  # fmt: skip
def test_invalid_specs_raise(bad, message):
    with pytest.raises(ValidationError, match=message):
        OPTIMIZER.validate_python(bad)


def test_adamw_has_keras_default_weight_decay():
    assert OPTIMIZER.validate_python(dict(type="AdamW")).weight_decay == 0.004
    assert OPTIMIZER.validate_python(dict(type="Adam")).weight_decay is None
