"""Conformance under Keras's mixed dtype policies: the same layers, built with
`dtype_policy: mixed_bfloat16` / `mixed_float16`, against Keras layers made with
`dtype="mixed_bfloat16"` (float32 weights copied in). The harness checks the inferred
dtype (the compute dtype) against `jax.eval_shape`, the output dtype and values against
Keras, and for BatchNormalization the float32 moving statistics after a training step.

Tolerances: most layers here give bit-identical half-precision outputs (Keras's float32
normalizations, bfloat16 matmuls and convolutions accumulate the same way), so they keep
the harness's 1e-5. Where the order of roundings differs — MultiHeadAttention scales the
float32 logits where we scale the projected query, the LSTM state and Softmax round
differently inside — outputs can only agree to the rounding of the half type, within one
or two units in the last place: bfloat16 keeps 8 significant bits (unit roundoff 2**-8 ~
3.9e-3), so rtol 2e-2 and atol 5e-2 (cancellation of O(1) terms near zero); float16 keeps
11 bits (2**-11 ~ 4.9e-4), so rtol 4e-3 and atol 1e-2. A wrong policy (float32
compute, weights not cast) shows up as a dtype mismatch, and a normalization that
skipped Keras's float32 computation as errors far above these.
"""

import pytest

from tests.conformance.harness import Case, run_case

F = "float32"
POLICIES = ("mixed_bfloat16", "mixed_float16")
ROUNDING = {"mixed_bfloat16": (5e-2, 2e-2), "mixed_float16": (1e-2, 4e-3)}
"""policy -> (atol, rtol) where roundings are ordered unlike Keras (module docstring)."""
ROUNDS_DIFFERENTLY = {"MultiHeadAttention", "LSTM", "Softmax"}

LAYERS = [
    ("dense", {"type": "Dense", "units": 4, "activation": "relu"}, {"x": ((6,), F)}),
    ("conv2d", {"type": "Conv2D", "filters": 3, "kernel_size": 3}, {"x": ((6, 6, 2), F)}),
    ("layer_norm", {"type": "LayerNormalization"}, {"x": ((4, 5), F)}),
    ("batch_norm", {"type": "BatchNormalization"}, {"x": ((4, 3), F)}),
    ("group_norm", {"type": "GroupNormalization", "groups": 2}, {"x": ((3, 4), F)}),
    ("mha", {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3}, {"x": ((5, 6), F)}),
    (
        "mha_causal",
        {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3, "use_causal_mask": True},
        {"x": ((5, 6), F)},
    ),
    ("lstm", {"type": "LSTM", "units": 4, "return_sequences": True}, {"x": ((5, 3), F)}),
    ("embedding", {"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"x": ((5,), "int32")}),
    ("softmax", {"type": "Softmax"}, {"x": ((7,), F)}),
    ("flatten", {"type": "Flatten"}, {"x": ((2, 3), F)}),
    ("add", {"type": "Add", "inputs": ["a", "b"]}, {"a": ((4,), F), "b": ((4,), F)}),
]


def policy_case(id_: str, layer: dict, inputs: dict, policy: str) -> Case:
    atol, rtol = ROUNDING[policy] if layer["type"] in ROUNDS_DIFFERENTLY else (1e-5, 1e-5)
    return Case(f"{id_}_{policy}", {**layer, "dtype_policy": policy}, inputs, atol=atol, rtol=rtol)


PRECISION_CASES = [
    policy_case(id_, layer, inputs, policy) for policy in POLICIES for id_, layer, inputs in LAYERS
]
"""Every layer above under both mixed policies."""


@pytest.mark.parametrize("case", PRECISION_CASES, ids=lambda c: c.id)
def test_layer_matches_keras_under_mixed_policy(case):
    run_case(case)
