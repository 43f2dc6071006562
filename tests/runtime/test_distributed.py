"""Sharded training on 8 simulated CPU devices: same losses on any mesh, shardings that
follow the rules, two processes == one process, checkpoints restored onto other meshes,
positioned divisibility errors.

Tolerance: sharded runs reduce in a different order (per-shard partial sums, then a
collective), so float32 results differ in the last bits and drift slowly over steps;
20 steps of Adam stay within rtol 1e-5 (observed ~1e-7 for the digits CNN).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.model import flat
from modelspec.compiler.sharding.mesh import put_batch
from modelspec.runtime.session import open_session
from modelspec.runtime.trainer import train
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples/digits/cnn.yaml")
MESH_222 = ["distribution.mesh.data=2", "distribution.mesh.fsdp=2", "distribution.mesh.tensor=2"]


def transformer_spec(tmp_path) -> str:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, (96, 16)).astype("int32")
    np.savez(tmp_path / "tokens.npz", tokens=tokens, label=(tokens[:, 0] % 4).astype("int32"))
    spec = tmp_path / "transformer.yaml"
    spec.write_text("""\
name: tiny-transformer
data: {train: {type: npz, path: tokens.npz, targets: {logits: label}}, batch_size: 16}
model:
  inputs: {tokens: {shape: [16], dtype: int32}}
  layers:
    - {name: embed, type: Embedding, input_dim: 64, output_dim: 32}
    - {name: attn, type: MultiHeadAttention, num_heads: 4, key_dim: 8, inputs: {query: embed, value: embed}}
    - {name: res, type: Add, inputs: [embed, attn]}
    - {type: LayerNormalization}
    - {name: ff, type: Dense, units: 64, activation: gelu}
    - {type: GlobalAveragePooling1D}
    - {name: logits, type: Dense, units: 4}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
optimizer: {type: Adam, learning_rate: 0.01}
""")
    return str(spec)


def losses(spec, overrides, devices, steps=20):
    session = open_session(spec, overrides, devices=devices)
    state, out = session.state, []
    ds, bs = session.data.train, session.spec.data.batch_size
    for i in range(steps):
        epoch, index = divmod(i, ds.num_batches(bs, False))
        batch = ds.batch(
            epoch, index, bs, shuffle=True, seed=session.spec.seed, drop_remainder=False
        )
        state = session.train_step(state, put_batch(session.dist, batch))
        out.append(float(session.objective.results(state.metrics)["loss"]))
    return np.array(out), session, state


@pytest.mark.parametrize("which", ["digits_cnn", "transformer"])
def test_same_losses_on_one_device_data8_and_2x2x2(which, tmp_path):
    spec = EXAMPLE if which == "digits_cnn" else transformer_spec(tmp_path)
    one, _, _ = losses(spec, [], jax.devices()[:1])
    data8, _, _ = losses(spec, ["distribution.mesh.data=8"], jax.devices())
    cube, _, _ = losses(spec, MESH_222, jax.devices())
    np.testing.assert_allclose(data8, one, rtol=1e-5)
    np.testing.assert_allclose(cube, one, rtol=1e-5)


def test_parameter_shardings_follow_the_rules(tmp_path):
    _, session, state = losses(transformer_spec(tmp_path), MESH_222, jax.devices(), steps=1)
    params = state.params["layers"]

    def spec_of(x):
        return tuple(x.sharding.spec) + (None,) * (x.ndim - len(x.sharding.spec))

    assert spec_of(params["embed"]["embeddings"]) == ("tensor", "fsdp")  # (vocab, embed)
    assert spec_of(params["attn"]["query"]["kernel"]) == ("fsdp", "tensor", None)
    assert spec_of(params["attn"]["attention_output"]["kernel"]) == ("tensor", None, "fsdp")
    assert spec_of(params["ff"]["kernel"]) == ("fsdp", "tensor")  # (embed, mlp)
    assert spec_of(params["layer_normalization"]["gamma"]) == (None,)
    slots = [
        leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
        if jax.tree_util.keystr(path).endswith("['layers']['ff']['kernel']")
    ]
    assert len(slots) == 2  # Adam's momentum and velocity, sharded like the parameter
    assert all(slot.sharding == params["ff"]["kernel"].sharding for slot in slots)
    cnn = open_session(EXAMPLE, MESH_222).state.params["layers"]
    assert spec_of(cnn["conv2d"]["kernel"]) == (None, None, None, "tensor")
    assert spec_of(cnn["conv2d"]["bias"]) == ("tensor",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def cli(args, devices, **kw):
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "modelspec", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_match_one_process(tmp_path):
    port = free_port()
    common = ["train", EXAMPLE, "--set", "train.epochs=2", "--run-dir"]
    procs = [
        cli(
            [
                *common,
                str(tmp_path / "mp"),
                "--coordinator",
                f"localhost:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            devices=2,
        )
        for i in (0, 1)
    ]
    single = cli([*common, str(tmp_path / "sp")], devices=4)
    outs = [p.communicate(timeout=400)[0] for p in (*procs, single)]
    assert [p.returncode for p in (*procs, single)] == [0, 0, 0], outs
    assert "Epoch 2/2" in outs[0] and "Epoch 2/2" not in outs[1]  # only process 0 prints
    mp, sp = read(tmp_path / "mp/metrics.jsonl"), read(tmp_path / "sp/metrics.jsonl")
    for a, b in zip(mp, sp, strict=True):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-5)


def test_checkpoint_restores_onto_other_meshes(tmp_path):
    overrides = ["train.epochs=2", "train.callbacks=[]"]
    full = train(
        EXAMPLE, tmp_path / "full", [*overrides, "distribution.mesh.data=8"], progress=False
    )
    for name, mesh, devices in [
        ("to_2x2", ["distribution.mesh={data: 2, tensor: 2}"], jax.devices()[:4]),
        ("to_4", ["distribution.mesh={data: -1}"], jax.devices()[:4]),
    ]:
        run = tmp_path / name
        cut = train(
            EXAMPLE, run, [*overrides, "distribution.mesh.data=8"], progress=False, max_steps=30
        )  # checkpoints at steps 20 and 23 (epoch end), then stops
        assert len(cut.epochs) == 1
        resumed = train(EXAMPLE, run, [*overrides, *mesh], progress=False, devices=devices)
        leaf = resumed.state.params["layers"]["dense"]["kernel"]
        assert len(leaf.sharding.device_set) == 4
        for (_, a), (_, b) in zip(flat(full.state.params), flat(resumed.state.params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        for a, b in zip(full.epochs, resumed.epochs, strict=True):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_must_show_cli_mesh_2x2x2_matches_single_device(tmp_path):
    args = ["train", EXAMPLE, "--set", "train.epochs=3", "--run-dir"]
    cube = cli(
        [*args, str(tmp_path / "cube"), *sum((["--set", m] for m in MESH_222), [])], devices=8
    )
    one = cli([*args, str(tmp_path / "one")], devices=1)
    outs = [p.communicate(timeout=400)[0] for p in (cube, one)]
    assert cube.returncode == 0 and one.returncode == 0, outs
    for a, b in zip(
        read(tmp_path / "cube/metrics.jsonl"), read(tmp_path / "one/metrics.jsonl"), strict=True
    ):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_divisibility_errors_are_positioned_and_name_the_fix(tmp_path, monkeypatch):
    result = CliRunner().invoke(app, ["summary", EXAMPLE, "--mesh", "data=2,tensor=4"])
    assert result.exit_code == 2
    assert (
        "cnn.yaml:22:7: model.layers[7]: layer 'dense' kernel (64, 10) with logical axes "
        "('embed', 'mlp'): dimension 1 (mlp -> tensor, 4 shards) does not divide 10"
    ) in result.stderr
    assert "Add `mlp: null` to distribution.rules" in result.stderr
    bad_batch = CliRunner().invoke(
        app, ["summary", EXAMPLE, "--mesh", "data=8", "--set", "data.batch_size=60"]
    )
    assert (
        "data.batch_size: batch_size 60 is not divisible by the batch mesh axes data = 8"
        in bad_batch.stderr
    )
    with pytest.raises(Exception) as err:
        train(EXAMPLE, tmp_path / "r", ["distribution.mesh={data: 3}"], progress=False)
    assert "needs 3 devices, but 8 are available" in str(err.value)


def test_summary_mesh_shows_specs_and_memory():
    result = CliRunner().invoke(
        app,
        [
            "summary",
            str(ROOT / "specs/transformer_encoder.yaml"),
            "--mesh",
            "data=2,fsdp=2,tensor=2",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["sharding"]
    by_name = {f"{p['layer']}/{p['path']}": p for p in plan["parameters"]}
    assert by_name["embed/embeddings"]["partition_spec"] == "P('tensor', 'fsdp')"
    assert by_name["embed/embeddings"]["per_device_shape"] == [2500, 32]
    assert plan["params_bytes_per_device"] < 4 * 387204  # sharded: less than a full replica


def test_frozen_weights_are_sharded_like_trainable_ones(tmp_path):
    session = open_session(
        transformer_spec(tmp_path), [*MESH_222, "model.layers.ff.trainable=false"]
    )
    kernel = session.state.frozen["layers"]["ff"]["kernel"]
    assert tuple(kernel.sharding.spec) == ("fsdp", "tensor")


def test_a_dead_process_stops_the_others_within_bounded_time(tmp_path):
    """kill -9 one of two processes: the survivor exits with JAX's error (no hang)."""
    import signal
    import time

    port = free_port()
    args = [
        "train",
        EXAMPLE,
        "--set",
        "train.epochs=500",
        "--set",
        "train.callbacks=[]",
        "--run-dir",
        str(tmp_path / "r"),
        "--coordinator",
        f"localhost:{port}",
        "--num-processes",
        "2",
    ]
    survivor = cli([*args, "--process-id", "0"], devices=1)
    victim = cli([*args, "--process-id", "1"], devices=1)
    metrics = tmp_path / "r/metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.2)  # both are training once process 0 has logged an epoch
    victim.send_signal(signal.SIGKILL)
    killed = time.time()
    out, _ = survivor.communicate(timeout=120)
    assert survivor.returncode != 0
    assert time.time() - killed < 90
    assert "another task died" in out or "heartbeat" in out
