"""Device-resident training data: the batches gathered on the device are the host
path's batches (same rows, same padded and masked last batch, same order from the
seed), so training, resume mid-epoch and steps_per_execution chunks give the same
states; data over the budget, or several processes, keep the host path."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from modelspec.compiler.sharding.mesh import put_batch
from modelspec.runtime import device_data
from modelspec.runtime.data.dataset import ArrayDataset
from modelspec.runtime.device_data import DeviceData, resident_data
from modelspec.runtime.session import open_session
from modelspec.runtime.steps import stack

N, BATCH = 53, 8  # 7 batches per epoch, the last one 5 real rows + 3 padding rows


def write_spec(tmp_path: Path, *, shuffle: bool = True, drop: bool = False) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.normal(size=(N, 6)).astype("float32"),
        y=rng.integers(0, 3, N).astype("int32"),
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""\
name: resident
seed: 4
data:
  train: {{type: npz, path: d.npz}}
  batch_size: {BATCH}
  shuffle: {str(shuffle).lower()}
  drop_remainder: {str(drop).lower()}
model:
  inputs: {{x: {{shape: [6]}}}}
  layers:
    - {{type: Dense, units: 16, activation: relu}}
    - {{type: Dropout, rate: 0.3}}
    - {{type: Dense, units: 3}}
loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
metrics: [accuracy]
optimizer: {{type: Adam, learning_rate: 0.01}}
""")
    return spec


def batching(session) -> dict:
    d = session.spec.data
    return dict(
        batch_size=d.batch_size,
        shuffle=d.shuffle,
        seed=session.spec.seed,
        drop_remainder=d.drop_remainder,
    )


def host_steps(session, state, epoch: int, start: int, stop: int, spe: int = 1):
    """The host path: batches built and copied per dispatch (the trainer's fallback)."""
    kw = batching(session)
    bs = kw.pop("batch_size")
    for b in range(start, stop, spe):
        batches = [
            session.data.train.batch(epoch, i, bs, **kw) for i in range(b, min(b + spe, stop))
        ]
        host = batches[0] if spe == 1 else stack(batches)
        state = session.train_step(state, put_batch(session.dist, host, stacked=spe > 1))
    return state


def leaves(state) -> list[np.ndarray]:
    def host(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(jax.device_get(x))

    return [host(x) for x in jax.tree_util.tree_leaves(state)]


def copy(state):
    """Fresh buffers (the steps donate their input state)."""
    return jax.tree_util.tree_map(jnp.copy, state)


def assert_same(a, b) -> None:
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop", [False, True])
def test_epoch_rows_are_the_host_batches(shuffle: bool, drop: bool) -> None:
    ds = ArrayDataset({"x": np.arange(N, dtype=np.float32)[:, None]}, {"y": np.arange(N)})
    for epoch in (0, 3):
        rows, mask = ds.epoch_rows(
            epoch, batch_size=BATCH, shuffle=shuffle, seed=2, drop_remainder=drop
        )
        batches = list(ds.epoch_batches(epoch, BATCH, shuffle=shuffle, seed=2, drop_remainder=drop))
        assert rows.shape == mask.shape == (len(batches), BATCH)
        assert mask.dtype == np.float32
        for i, batch in enumerate(batches):
            assert rows[i].tolist() == batch["targets"]["y"].tolist()
            np.testing.assert_array_equal(mask[i], batch["mask"])
    # a batch larger than the dataset cycles through it, as the host batch does
    rows, mask = ArrayDataset({"x": np.zeros((3, 1))}, {}).epoch_rows(
        0, batch_size=8, shuffle=False, seed=0, drop_remainder=False
    )
    assert rows.tolist() == [[0, 1, 2, 0, 1, 2, 0, 1]] and mask.sum() == 3


@pytest.mark.parametrize("devices", [1, 8])
@pytest.mark.parametrize("drop", [False, True])
def test_device_gathered_training_equals_host_batches(tmp_path, devices: int, drop: bool):
    """Two epochs (the padded last batch included): the same states bit for bit on one
    device; on 8 (data-parallel, replicated data) the same up to reduction order."""
    spec = write_spec(tmp_path, drop=drop)
    session = open_session(spec, ["distribution.mesh.data=-1"], devices=jax.devices()[:devices])
    resident = resident_data(session, session.data.train, **batching(session))
    assert isinstance(resident, DeviceData)
    steps = session.data.train.num_batches(BATCH, drop)
    host, gathered = copy(session.state), copy(session.state)
    step = 0
    for epoch in range(2):
        host = host_steps(session, host, epoch, 0, steps)
        for b in range(steps):
            gathered = resident.train(gathered, epoch, b, 1, step)
            step += 1
    assert int(gathered.step) == int(host.step) == 2 * steps
    if devices == 1:
        assert_same(gathered, host)
    else:
        for x, y in zip(leaves(gathered), leaves(host), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_resume_mid_epoch_and_chunks_are_identical(tmp_path):
    """An uninterrupted epoch in chunks of 3 (the host path's steps_per_execution) ==
    stopping after batch 4, rebuilding the device data as a resumed run does, and
    finishing the epoch one step at a time."""
    spec = write_spec(tmp_path)
    session = open_session(spec, ["train.steps_per_execution=3"], devices=jax.devices()[:1])
    kw, steps = batching(session), session.data.train.num_batches(BATCH, False)
    start = copy(session.state)

    def fresh():
        return copy(start)

    host = host_steps(session, fresh(), 0, 0, steps, spe=3)
    chunked = fresh()
    resident = resident_data(session, session.data.train, **kw)
    for b in range(0, steps, 3):
        chunked = resident.train(chunked, 0, b, min(3, steps - b), b)
    assert_same(chunked, host)

    first = resident_data(session, session.data.train, **kw)
    part = fresh()
    for b in range(4):
        part = first.train(part, 0, b, 1, b)
    again = resident_data(session, session.data.train, **kw)
    resumed = copy(part)  # as restored from the checkpoint
    for b in range(4, steps):
        resumed = again.train(resumed, 0, b, 1, b)
    one_by_one = fresh()
    for b in range(steps):
        one_by_one = first.train(one_by_one, 0, b, 1, b)
    assert_same(resumed, one_by_one)
    # scanned chunks and single steps agree to float rounding (Keras-level equivalence)
    for x, y in zip(leaves(chunked), leaves(one_by_one), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_over_budget_or_many_processes_keeps_the_host_path(tmp_path, monkeypatch):
    from modelspec.runtime.trainer import Trainer

    spec = write_spec(tmp_path)
    session = open_session(spec, devices=jax.devices()[:1])
    kw = batching(session)
    nbytes = device_data.dataset_bytes(session.data.train)
    assert nbytes == N * 6 * 4 + N * 4
    monkeypatch.setattr(device_data, "CPU_BUDGET_BYTES", nbytes)
    assert resident_data(session, session.data.train, **kw) is not None
    monkeypatch.setattr(device_data, "CPU_BUDGET_BYTES", nbytes - 1)
    assert resident_data(session, session.data.train, **kw) is None
    assert Trainer(session, tmp_path / "run", progress=False).resident is None
    monkeypatch.setattr(device_data, "CPU_BUDGET_BYTES", 1 << 30)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert resident_data(session, session.data.train, **kw) is None


def test_train_with_and_without_device_data_gives_the_same_run(tmp_path, monkeypatch):
    """The whole trainer: host path (budget 0) and device path write the same history
    and end in the same weights."""
    from modelspec.runtime.trainer import train

    spec = write_spec(tmp_path)
    common = ["train.epochs=2", "distribution.mesh.data=1"]
    on = train(spec, tmp_path / "on", common, progress=False, devices=jax.devices()[:1])
    monkeypatch.setattr(device_data, "CPU_BUDGET_BYTES", 0)
    off = train(spec, tmp_path / "off", common, progress=False, devices=jax.devices()[:1])
    assert on.epochs == off.epochs
    assert_same(on.state.params, off.state.params)
