"""`specs/gpt_tiny.yaml`, the GPT-2-shaped byte-level language model: its scanned stack of
8 decoder blocks trains to the unrolled model's losses, and sharded over 8 simulated
devices as {data, fsdp, tensor} = {2, 2, 2} to the one-device losses (rtol 1e-5: sharded
sums reduce in another order, see test_distributed.py)."""

from __future__ import annotations

import jax
import numpy as np

from tests.conftest import ROOT
from tests.runtime.test_distributed import MESH_222, losses

GPT_TINY = str(ROOT / "specs/gpt_tiny.yaml")
STEPS = 6


def test_scanned_equals_unrolled_and_2x2x2_equals_one_device():
    scanned, session, _ = losses(GPT_TINY, [], jax.devices()[:1], steps=STEPS)
    assert [s.name for s in session.spec.execution.stacks] == ["blocks"]
    assert scanned[-1] < scanned[0]  # it learns
    unrolled, session, _ = losses(
        GPT_TINY, ["model.layers.1.scan=false"], jax.devices()[:1], steps=STEPS
    )
    assert session.spec.execution.stacks == ()
    np.testing.assert_allclose(unrolled, scanned, rtol=1e-5)
    cube, session, state = losses(GPT_TINY, MESH_222, jax.devices(), steps=STEPS)
    np.testing.assert_allclose(cube, scanned, rtol=1e-5)
    kernel = state.params["layers"]["blocks"]["mlp_in"]["kernel"]
    assert kernel.shape == (8, 64, 256)
    assert tuple(kernel.sharding.spec) == (None, "fsdp", "tensor")  # stacked axis replicated
