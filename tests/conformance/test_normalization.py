"""Conformance: normalization layers (BatchNormalization, LayerNormalization,
GroupNormalization, UnitNormalization, RMSNormalization) against Keras, and the
positioned errors for what Keras refuses (or would compute along the wrong axis).

BatchNormalization is `train_deterministic` (its spec class says so), so training mode
is compared too: the batch-statistics output *and* the updated moving mean/variance
must equal Keras's.
"""

import keras
import numpy as np
import pytest
import yaml

from modelspec import SpecError, load
from tests.conformance.diagnostics import one_argument_diagnostic
from tests.conformance.harness import Case, run_case

F = "float32"
# Keras warns that `rms_scaling` is deprecated; its behaviour is still what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`:UserWarning")


def bn(**args):
    return {"type": "BatchNormalization", **args}


def ln(**args):
    return {"type": "LayerNormalization", **args}


def gn(**args):
    return {"type": "GroupNormalization", **args}


GROUP_CASES = [
    Case("gn_default_groups", gn(), {"x": ((4, 64), F)}),
    Case("gn_rank2", gn(groups=2), {"x": ((6,), F)}),
    Case("gn_rank4", gn(groups=3, epsilon=0.01), {"x": ((4, 3, 6), F)}),
    Case("gn_instance", gn(groups=-1), {"x": ((5, 4), F)}),
    Case("gn_one_group", gn(groups=1), {"x": ((3, 4), F)}),
    Case("gn_axis1", gn(groups=2, axis=1), {"x": ((4, 5), F)}),
    Case("gn_axis_neg2", gn(groups=2, axis=-2), {"x": ((3, 4, 5), F)}),
    Case("gn_no_center_scale", gn(groups=2, center=False, scale=False), {"x": ((4,), F)}),
    Case("gn_no_center", gn(groups=2, center=False), {"x": ((2, 4), F)}),
    Case("gn_unknown_steps", gn(groups=2), {"x": ((None, 4), F)}),
    Case("gn_frozen", gn(groups=2, trainable=False), {"x": ((4,), F)}),
    # Keras keeps float16 (and integers) until the normalized values are cast back.
    Case("gn_float16_input", gn(groups=2), {"x": ((3, 4), "float16")}),
    Case("gn_int_input", gn(groups=2), {"x": ((3, 4), "int32")}),
]

UNIT_CASES = [
    Case("unit_default", {"type": "UnitNormalization"}, {"x": ((5,), F)}),
    Case("unit_axis1_rank3", {"type": "UnitNormalization", "axis": 1}, {"x": ((4, 3), F)}),
    Case("unit_axes", {"type": "UnitNormalization", "axis": [1, -1]}, {"x": ((2, 3, 4), F)}),
    Case("unit_unknown_steps", {"type": "UnitNormalization"}, {"x": ((None, 3), F)}),
    Case("unit_float16", {"type": "UnitNormalization"}, {"x": ((4,), "float16")}, atol=1e-3),
]

RMS_CASES = [
    Case("rms_default", {"type": "RMSNormalization"}, {"x": ((6,), F)}),
    Case("rms_rank3", {"type": "RMSNormalization", "epsilon": 0.01}, {"x": ((4, 5), F)}),
    Case("rms_last_two", {"type": "RMSNormalization", "axis": [-2, -1]}, {"x": ((2, 3, 4), F)}),
    Case("rms_positive_axes", {"type": "RMSNormalization", "axis": [2, 3]}, {"x": ((2, 3, 4), F)}),
    Case("rms_positive_axis", {"type": "RMSNormalization", "axis": 2}, {"x": ((2, 3), F)}),
    Case("rms_float16", {"type": "RMSNormalization"}, {"x": ((4,), "float16")}, atol=1e-3),
    Case("rms_int", {"type": "RMSNormalization"}, {"x": ((4,), "int32")}),
]

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
    *GROUP_CASES,
    *UNIT_CASES,
    *RMS_CASES,
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


L = "model.layers[0]"


@pytest.mark.parametrize(
    ("layer_type", "arg", "shape", "dtype", "at", "text"),
    [
        ("GroupNormalization", "groups: 3", [5, 4], F, (6, 15, L + ".groups"), "must divide the 4"),
        ("GroupNormalization", "groups: 8", [4], F, (6, 15, L + ".groups"), "must divide the 4"),
        ("GroupNormalization", "groups: 0", [4], F, (6, 15, L + ".groups"), "positive integer"),
        ("GroupNormalization", "groups: -2", [4], F, (6, 15, L + ".groups"), "must be >= -1"),
        ("GroupNormalization", "axis: 3", [2, 4], F, (6, 13, L + ".axis"), "out of range"),
        # The weights need the size of the channels axis.
        ("GroupNormalization", "groups: 2; axis: 1", [None, 4], F, (7, 13, L + ".axis"), "known"),
        ("RMSNormalization", "axis: 1", [3, 4], F, (6, 13, L + ".axis"), "the last axes"),
        ("RMSNormalization", "axis: [-1, 1]", [3, 4], F, (6, 13, L + ".axis"), "increasing"),
        ("UnitNormalization", "axis: [1, -2]", [3, 4], F, (6, 13, L + ".axis"), "is repeated"),
        ("UnitNormalization", "axis: -1", [4], "int32", (5, 7, L), "needs a float input, got"),
    ],
)
def test_errors_are_positioned(tmp_path, layer_type, arg, shape, dtype, at, text):
    """Each is refused by Keras too (at construction, when built or when called); the
    diagnostic is positioned on the value at fault, or on the layer for its input."""
    args = yaml.safe_load("{" + arg.replace("; ", ", ") + "}")
    with pytest.raises((ValueError, TypeError, IndexError)):
        k = getattr(keras.layers, layer_type)(**args)
        k(np.ones([2, *(3 if d is None else d for d in shape)], dtype))
    lines = arg.replace("; ", "\n      ")  # one argument per line
    shape_text = str(shape).replace("None", "null")
    d = one_argument_diagnostic(tmp_path, layer_type, lines, shape_text, dtype)
    assert (d.line, d.col, d.path) == at, d.format()
    assert text in d.message, d.format()
