"""Conformance: core layers (Dense, Activation, Dropout, Rescaling, Embedding, Identity)
against Keras."""

import pytest

from modelspec.schema.layer_args import ACTIVATIONS
from tests.conformance.harness import Case, run_case

F = "float32"

IDENTITY_CASES = [
    Case("identity", {"type": "Identity"}, {"x": ((4,), F)}),
    Case("identity_variable", {"type": "Identity"}, {"x": ((None, 3, None), F)}),
    Case("identity_int", {"type": "Identity"}, {"x": ((2, 3), "int32")}),
    Case("identity_uint8", {"type": "Identity"}, {"x": ((3,), "uint8")}),
    Case("identity_bool", {"type": "Identity"}, {"x": ((3,), "bool")}),
    # Keras autocasts float inputs to its float32 compute dtype, even here.
    Case("identity_float16", {"type": "Identity"}, {"x": ((3,), "float16")}),
    Case("identity_bfloat16", {"type": "Identity"}, {"x": ((2, 2), "bfloat16")}),
]
"""Identity's cases, also checked for Keras's output dtype (the harness compares values)."""

CASES = [
    Case("dense", {"type": "Dense", "units": 4}, {"x": ((6,), F)}),
    Case(
        "dense_relu_nobias",
        {"type": "Dense", "units": 3, "activation": "relu", "use_bias": False},
        {"x": ((5,), F)},
    ),
    Case(
        "dense_rank3_gelu", {"type": "Dense", "units": 2, "activation": "gelu"}, {"x": ((4, 3), F)}
    ),
    Case("dense_frozen", {"type": "Dense", "units": 2, "trainable": False}, {"x": ((3,), F)}),
    *[
        Case(f"activation_{a}", {"type": "Activation", "activation": a}, {"x": ((4, 3), F)})
        for a in ACTIVATIONS
    ],
    Case("dropout", {"type": "Dropout", "rate": 0.5}, {"x": ((40,), F)}),
    Case(
        "dropout_noise_shape",
        {"type": "Dropout", "rate": 0.3, "noise_shape": [None, 1, 8]},
        {"x": ((6, 8), F)},
    ),
    Case("rescaling", {"type": "Rescaling", "scale": 0.5, "offset": -1.0}, {"x": ((4,), F)}),
    Case(
        "embedding", {"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"x": ((5,), "int32")}
    ),
    Case(
        "embedding_2d",
        {"type": "Embedding", "input_dim": 7, "output_dim": 3},
        {"x": ((2, 3), "int32")},
        int_high=7,
    ),
    *IDENTITY_CASES,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_core_layer_matches_keras(case):
    run_case(case)
