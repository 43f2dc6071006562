"""Test session setup: 8 simulated CPU devices and Keras on the JAX backend.

Both must be set before jax or keras is imported anywhere, hence module import time.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT


RUN_LIMIT = 20_000_000
"""Shipped specs with more parameters than this (GPT-2 small) are too slow to run, export
or twin in Keras on a test machine's CPU: tests that run specs check them abstractly or
skip them, and their architecture's numerics are covered by a small sibling spec
(gpt_tiny.yaml has gpt2_small.yaml's blocks)."""


def runnable(paths):
    """`paths` as pytest params, the specs above RUN_LIMIT marked skipped with the reason."""
    from modelspec import load, summary

    out = []
    for path in paths:
        try:
            big = "model:" in path.read_text() and summary(load(path))["total_params"] > RUN_LIMIT
        except Exception:  # a spec that does not load is the test's business
            big = False
        reason = f"{path.name}: over {RUN_LIMIT:,} parameters; gpt_tiny covers its layers"
        out.append(pytest.param(path, marks=pytest.mark.skip(reason=reason)) if big else path)
    return out
