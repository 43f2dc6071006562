"""Mixed precision end to end: the digits example trained under `mixed_bfloat16` keeps
float32 weights, and `mixed_float16`'s dynamic loss scaling (Keras's LossScaleOptimizer)
skips overflowing steps, halves/doubles its scale, and is restored on resume."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.runtime.checkpoint import Checkpointer
from modelspec.runtime.optim.loss_scale import LossScaleState, loss_scale_optimizer
from modelspec.runtime.optim.optimizers import build_optimizer, iterations
from modelspec.runtime.session import open_session
from modelspec.schema.optimizers import SGD
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples/digits/cnn.yaml")

SMALL = {
    "modelspec": 1,
    "name": "fp16",
    "data": {"train": {"type": "sklearn", "name": "digits"}, "batch_size": 32},
    "model": {
        "dtype_policy": "mixed_float16",
        "inputs": {"pixels": {"shape": [64]}},
        "layers": [
            {"type": "Rescaling", "scale": 0.0625},
            {"type": "Dense", "units": 16, "activation": "relu"},
            {"type": "Dense", "units": 10},
        ],
    },
    "loss": {"type": "SparseCategoricalCrossentropy", "from_logits": True},
    "optimizer": {"type": "SGD", "learning_rate": 0.1},
}


def _scale_state(opt_state) -> LossScaleState:
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, LossScaleState))]
    assert len(found) == 1 and isinstance(found[0], LossScaleState)
    return found[0]


def _with_scale(state, scale: float, counter: int = 0):
    ls = _scale_state(state.opt_state)
    new = ls._replace(
        dynamic_scale=jnp.asarray(scale, jnp.float32), step_counter=jnp.asarray(counter, jnp.int32)
    )
    return state._replace(opt_state=new)


def test_mixed_bfloat16_trains_digits_with_float32_weights(tmp_path):
    """Must-show: `--set model.dtype_policy=mixed_bfloat16` reaches val_accuracy >= 0.97
    on the digits example, and the checkpoint holds float32 weights and optimizer state."""
    run = tmp_path / "run"
    policy = ["--set", "model.dtype_policy=mixed_bfloat16"]
    result = CliRunner().invoke(app, ["train", EXAMPLE, "--run-dir", str(run), *policy])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["val_accuracy"] >= 0.97

    session = open_session(EXAMPLE, ["model.dtype_policy=mixed_bfloat16"])
    ckpt = Checkpointer(run / "checkpoints", max_to_keep=None, async_save=False)
    state, _ = ckpt.restore(ckpt.latest_step(), session.state)
    ckpt.close()
    for tree in (state.params, state.opt_state):
        floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats and {x.dtype for x in floats} == {jnp.dtype(jnp.float32)}
    # ... while the layers compute (and the model outputs) in bfloat16
    outputs = session.predict_step(state, {"pixels": np.zeros((16, 64), np.float32)})
    assert {str(v.dtype) for v in outputs.values()} == {"bfloat16"}
    assert _no_loss_scale(state.opt_state)  # only mixed_float16 scales the loss (Keras)


def _no_loss_scale(opt_state) -> bool:
    return not any(
        isinstance(x, LossScaleState)
        for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, LossScaleState))
    )


def test_loss_scale_rule_matches_keras():
    """Keras's rule: non-finite grads skip the update (inner state included) and halve
    the scale; finite grads are unscaled; the scale doubles after N finite steps."""
    tx = loss_scale_optimizer(build_optimizer(SGD(type="SGD", learning_rate=0.5)), 8.0, 3)
    params = {"w": jnp.ones((2,), jnp.float32)}
    state = tx.init(params)
    assert float(state.dynamic_scale) == 8.0 and int(state.step_counter) == 0

    updates, state = tx.update({"w": jnp.array([jnp.inf, 1.0])}, state, params)
    np.testing.assert_array_equal(np.asarray(updates["w"]), [0.0, 0.0])
    assert float(state.dynamic_scale) == 4.0 and int(state.step_counter) == 0
    assert iterations(state) == 0  # the inner optimizer did not step

    for i in range(3):
        updates, state = tx.update({"w": jnp.array([4.0, 8.0])}, state, params)
        np.testing.assert_allclose(np.asarray(updates["w"]), [-0.5, -1.0])  # lr * grad/4
        assert float(state.dynamic_scale) == (8.0 if i == 2 else 4.0)
        assert int(state.step_counter) == (0 if i == 2 else i + 1)
    assert iterations(state) == 3

    _, state = tx.update({"w": jnp.array([jnp.nan, 0.0])}, state, params)
    assert float(state.dynamic_scale) == 4.0 and int(state.step_counter) == 0


def test_overflowing_train_step_is_skipped_and_scale_halves():
    session = open_session(SMALL)
    state = session.state
    ls = _scale_state(state.opt_state)
    assert float(ls.dynamic_scale) == 2.0**15 and int(ls.step_counter) == 0
    batch = _batch(session)

    # A scale near float32's max makes loss * scale overflow: the step must be skipped.
    before = jax.tree.map(np.asarray, state.params)
    after = session.train_step(_with_scale(state, 3e38, counter=5), batch)
    ls = _scale_state(after.opt_state)
    assert float(ls.dynamic_scale) == np.float32(1.5e38) and int(ls.step_counter) == 0
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after.params), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert iterations(after.opt_state) == 0

    # A normal scale: the same batch updates the weights and counts a good step.
    after = session.train_step(
        after._replace(opt_state=_with_scale(after, 2.0**15).opt_state), batch
    )
    ls = _scale_state(after.opt_state)
    assert float(ls.dynamic_scale) == 2.0**15 and int(ls.step_counter) == 1
    assert iterations(after.opt_state) == 1
    assert any(
        not np.array_equal(a, np.asarray(b))
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after.params), strict=True)
    )


def _batch(session):
    """One training batch of the session's data (32 digits)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    n = 32
    return {
        "inputs": {"pixels": jnp.asarray(d.data[:n], jnp.float32)},
        "targets": {session.spec.graph.outputs[0]: jnp.asarray(d.target[:n], jnp.int32)},
        "mask": jnp.ones((n,), jnp.float32),
    }


def test_resume_restores_loss_scale(tmp_path):
    """The scale and its counter are checkpointed with the optimizer state and come back
    exactly on restore."""
    session = open_session(SMALL)
    state = _with_scale(session.state, 512.0, counter=7)
    meta = {"epoch": 0, "next_batch": 0, "epochs_logged": 0, "callbacks": {}, "finished": False}
    ckpt = Checkpointer(tmp_path / "ckpt", max_to_keep=None, async_save=False)
    ckpt.save(3, state, meta)
    ckpt.wait()
    restored, _ = ckpt.restore(3, open_session(SMALL).state)
    ckpt.close()
    ls = _scale_state(restored.opt_state)
    assert float(ls.dynamic_scale) == 512.0 and int(ls.step_counter) == 7
