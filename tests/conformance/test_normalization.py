"""Conformance: normalization layers (BatchNormalization, LayerNormalization) against
Keras.

BatchNormalization is `train_deterministic` (its spec class says so), so training mode
is compared too: the batch-statistics output *and* the updated moving mean/variance
must equal Keras's.
"""

import pytest

from modelspec import SpecError, load
from tests.conformance.harness import Case, run_case

F = "float32"
# Keras warns that `rms_scaling` is deprecated; its behaviour is still what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")


def bn(**args):
    return {"type": "BatchNormalization", **args}


def ln(**args):
    return {"type": "LayerNormalization", **args}


CASES = [
    # BatchNormalization
    Case("bn_rank2", bn(), {"x": ((5,), F)}),
    Case("bn_rank4", bn(momentum=0.9, epsilon=0.01), {"x": ((4, 3, 2), F)}),
    Case(
        "bn_no_center_scale",
        bn(center=False, scale=False),
        {"x": ((3, 4), F)},
    ),
    Case("bn_no_center", bn(center=False), {"x": ((4,), F)}),
    Case("bn_no_scale", bn(scale=False), {"x": ((4,), F)}),
    Case("bn_axis1_rank3", bn(axis=1), {"x": ((4, 3), F)}),
    Case("bn_axis_neg2", bn(axis=-2, momentum=0.5), {"x": ((2, 5, 3), F)}),
    Case("bn_frozen", bn(trainable=False), {"x": ((3,), F)}),
    Case("bn_int_input", bn(), {"x": ((4,), "int32")}),
    # LayerNormalization
    Case("ln_default", ln(), {"x": ((6,), F)}),
    Case("ln_rank3", ln(epsilon=1e-5), {"x": ((4, 5), F)}),
    Case("ln_axis_list", ln(axis=[1, 2]), {"x": ((3, 4), F)}),
    Case("ln_axis_list_rank4", ln(axis=[-3, -1]), {"x": ((2, 3, 4), F)}),
    Case("ln_axis1_rank3", ln(axis=1), {"x": ((4, 3), F)}),
    Case("ln_no_center", ln(center=False), {"x": ((5,), F)}),
    Case("ln_no_center_scale", ln(center=False, scale=False), {"x": ((4, 3), F)}),
    Case("ln_rms_scaling", ln(rms_scaling=True), {"x": ((4, 6), F)}),
    Case(
        "ln_rms_scaling_axes", ln(rms_scaling=True, axis=[1, 2], center=False), {"x": ((3, 4), F)}
    ),
    Case("ln_float16_input", ln(), {"x": ((5,), "float16")}, atol=1e-3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_normalization_layer_matches_keras(case):
    run_case(case)


def test_empty_layer_normalization_axis_is_an_error():
    with pytest.raises(SpecError, match="axis"):
        load(
            {
                "model": {
                    "inputs": {"x": {"shape": [2]}},
                    "layers": [{"type": "LayerNormalization", "axis": []}],
                }
            }
        )
