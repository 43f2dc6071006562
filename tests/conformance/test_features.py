"""Conformance: feature preprocessing layers (Normalization, Discretization,
CategoryEncoding) against Keras.

Cases without the state in the spec are adapted: the harness adapts Keras's layer and
ours (the spec class's `adapter`) on the case's input, checks the learned state is
Keras's, then compares outputs. Arguments and inputs Keras refuses (or would treat
unlike its own declared shapes) are refused with positioned diagnostics.
"""

import keras
import numpy as np
import pytest

from modelspec.runtime.adapters import AdaptError, discretization
from modelspec.schema.layers.features import Discretization
from tests.conformance.diagnostics import assert_on_layer_field, keras_refuses, written
from tests.conformance.harness import Case, run_case

F, INT = "float32", "int32"
NORM, DISC, CAT = "Normalization", "Discretization", "CategoryEncoding"


def case(id_: str, layer: dict, shape: tuple, dtype: str = F, **kw) -> Case:
    """One input `x`; these layers are deterministic, so training mode is compared too."""
    return Case(id_, layer, {"x": (shape, dtype)}, train_deterministic=True, **kw)


CASES = [
    case("norm_adapt", {"type": NORM}, (4,)),
    case("norm_adapt_axis_none", {"type": NORM, "axis": None}, (3, 4)),
    case("norm_adapt_two_axes", {"type": NORM, "axis": [1, -1]}, (3, 4)),
    case("norm_adapt_middle_axis", {"type": NORM, "axis": 1}, (3, 4)),
    case("norm_adapt_invert", {"type": NORM, "invert": True}, (5,)),
    case("norm_adapt_int", {"type": NORM}, (4,), INT),
    case("norm_scalar", {"type": NORM, "mean": 2.0, "variance": 3.0}, (4,)),
    case(
        "norm_per_feature",
        {"type": NORM, "mean": [1.0, -1.0, 0.5], "variance": [4.0, 0.25, 1e-16]},
        (3,),
    ),
    case(
        "norm_right_aligned_invert",
        {
            "type": NORM,
            "axis": [1, 2],
            "mean": [0.1, 0.2, 0.3, 0.4],
            "variance": [1.5, 2.0, 0.5, 1.0],
            "invert": True,
        },
        (3, 4),
    ),
    case(
        "norm_broadcast_one",
        {"type": NORM, "axis": [1, 2], "mean": [[1.0], [2.0], [3.0]], "variance": [[1], [2], [3]]},
        (3, 4),
    ),
    case("norm_int_constant", {"type": NORM, "mean": 4, "variance": 9}, (2,), INT),
    case("disc_bounds", {"type": DISC, "bin_boundaries": [-0.5, 0.0, 0.5]}, (4,)),
    case("disc_bounds_int_input", {"type": DISC, "bin_boundaries": [2, 5.5]}, (4,), INT),
    case(
        "disc_one_hot",
        {"type": DISC, "bin_boundaries": [-1, 0, 1], "output_mode": "one_hot"},
        (1,),
    ),
    case(
        "disc_one_hot_rank3",
        {"type": DISC, "bin_boundaries": [0], "output_mode": "one_hot"},
        (2, 3),
    ),
    case(
        "disc_multi_hot",
        {"type": DISC, "bin_boundaries": [-1, 0, 1], "output_mode": "multi_hot"},
        (6,),
    ),
    case("disc_count", {"type": DISC, "bin_boundaries": [0, 0.5], "output_mode": "count"}, (6,)),
    case("disc_count_rank3", {"type": DISC, "bin_boundaries": [0], "output_mode": "count"}, (4, 2)),
    case("disc_adapt", {"type": DISC, "num_bins": 4}, (6,)),
    case("disc_adapt_epsilon", {"type": DISC, "num_bins": 3, "epsilon": 0.2}, (8,)),
    case(
        "disc_adapt_one_hot_int", {"type": DISC, "num_bins": 3, "output_mode": "one_hot"}, (4,), INT
    ),
    case("disc_adapt_multi_hot", {"type": DISC, "num_bins": 2, "output_mode": "multi_hot"}, (5,)),
    case("cat_multi_hot", {"type": CAT, "num_tokens": 6}, (4,), INT, int_high=8),
    case("cat_binary", {"type": CAT, "num_tokens": 5, "output_mode": "binary"}, (3,), INT),
    case(
        "cat_count", {"type": CAT, "num_tokens": 4, "output_mode": "count"}, (7,), INT, int_high=4
    ),
    case("cat_one_hot", {"type": CAT, "num_tokens": 5, "output_mode": "one_hot"}, (1,), INT),
    case("cat_one_hot_seq", {"type": CAT, "num_tokens": 9, "output_mode": "one_hot"}, (3,), INT),
    case("cat_one_hot_rank1", {"type": CAT, "num_tokens": 7, "output_mode": "one_hot"}, (), INT),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_feature_layer_matches_keras(case):
    run_case(case)


def test_discretization_adapt_equals_keras_on_a_larger_sample():
    """Enough values for the summary to be compressed (more than 1 / epsilon points)."""
    data = np.random.default_rng(3).gamma(2.0, size=(500, 3)).astype("float32")
    layer = Discretization(type=DISC, num_bins=7)
    theirs = keras.layers.Discretization(num_bins=7)
    theirs.reset_state()
    theirs.update_state(data)
    theirs.finalize_state()
    ours = discretization(layer, data)["bin_boundaries"]
    np.testing.assert_allclose(ours, np.asarray(theirs.bin_boundaries, "float32"), rtol=1e-6)


def test_discretization_refuses_too_few_values_to_adapt():
    """Keras gives fewer boundaries than `num_bins - 1` on fewer values than bins: the
    layer's declared bucket count would be wrong, so adapt refuses, naming `num_bins`."""
    theirs = keras.layers.Discretization(num_bins=5)
    theirs.reset_state()
    theirs.update_state(np.array([1.0, 2.0, 3.0], "float32"))
    theirs.finalize_state()
    assert len(theirs.bin_boundaries) == 2
    with pytest.raises(AdaptError, match="gives 2 boundaries in Keras, not 4") as info:
        discretization(Discretization(type=DISC, num_bins=5), np.array([1.0, 2.0, 3.0]))
    assert info.value.field == "num_bins"


def _keras(layer_type: str, shape: tuple, dtype: str = F, **args):
    """Build the Keras layer and call it on ones of `shape` (the batch axis included)."""
    return lambda: getattr(keras.layers, layer_type)(**args)(np.ones(shape, dtype))


REFUSED = [
    (
        "type: Normalization\nmean: 1.0",
        [3],
        F,
        "mean",
        10,
        "must be set together",
        _keras(NORM, (2, 3), mean=1.0),
        "both `mean` and `variance` must be set",
    ),
    (
        "type: Normalization\nmean: [1.0, 2.0]\nvariance: [1.0, 2.0, 3.0]",
        [3],
        F,
        "variance",
        11,
        "must have the same shape",
        _keras(NORM, (2, 3), mean=[1.0, 2.0], variance=[1.0, 2.0, 3.0]),
        "must have the same shape",
    ),
    (
        "type: Normalization\nmean: [[1.0]]\nvariance: [[1.0]]",
        [3],
        F,
        "mean",
        10,
        "at most the number of kept axes (1)",
        _keras(NORM, (2, 3), mean=[[1.0]], variance=[[1.0]]),
        "must be less than or equal to the number of axes",
    ),
    (
        "type: Normalization\nmean: [1.0, 2.0]\nvariance: [1.0, 2.0]",
        [3],
        F,
        "mean",
        10,
        "cannot be broadcast",
        _keras(NORM, (2, 3), mean=[1.0, 2.0], variance=[1.0, 2.0]),
        "",
    ),
    (
        "type: Normalization\naxis: 2",
        [3],
        F,
        "axis",
        10,
        "axis 2 is out of range",
        _keras(NORM, (2, 3), axis=2),
        r"in the range \[-ndim, ndim\)",
    ),
    (
        "type: Normalization\naxis: [1, -1]",
        [3],
        F,
        "axis",
        10,
        "lists the same axis twice",
        None,
        None,
    ),
    (
        "type: Normalization",
        "[null]",
        F,
        "axis",
        7,
        "must have a known size",
        None,
        None,
    ),
    (
        "type: Discretization",
        [3],
        F,
        "num_bins",
        7,
        "needs `bin_boundaries`, or `num_bins`",
        _keras(DISC, (2, 3)),
        "You need to set either `num_bins` or `bin_boundaries`",
    ),
    (
        "type: Discretization\nnum_bins: 3\nbin_boundaries: [0.0]",
        [3],
        F,
        "num_bins",
        10,
        "either `bin_boundaries` or `num_bins`, not both",
        _keras(DISC, (2, 3), num_bins=3, bin_boundaries=[0.0]),
        "Both `num_bins` and `bin_boundaries` should not be set",
    ),
    (
        "type: Discretization\nbin_boundaries: [1.0, 0.0]",
        [3],
        F,
        "bin_boundaries",
        10,
        "must be sorted",
        None,
        None,
    ),
    (
        "type: Discretization\nbin_boundaries: [0.0]\noutput_mode: tf_idf",
        [3],
        F,
        "output_mode",
        11,
        "must be one of",
        _keras(DISC, (2, 3), bin_boundaries=[0.0], output_mode="tf_idf"),
        "Unknown value for `output_mode`|Invalid value for argument `output_mode`",
    ),
    (
        "type: Discretization\nbin_boundaries: [0.0]\noutput_mode: count",
        [],
        F,
        None,
        7,
        "reduces over axis 1, which for input (None,) is the batch axis",
        None,
        None,
    ),
    (
        "type: Discretization\nnum_bins: 3\nsparse: true",
        [3],
        F,
        "sparse",
        11,
        "Keras's argument 'sparse'",
        None,
        None,
    ),
    (
        "type: CategoryEncoding\nnum_tokens: 0",
        [3],
        INT,
        "num_tokens",
        10,
        "must be > 0",
        _keras(CAT, (2, 3), INT, num_tokens=0),
        "`num_tokens` must be >= 1",
    ),
    (
        "type: CategoryEncoding",
        [3],
        INT,
        "num_tokens",
        7,
        "missing required argument 'num_tokens'",
        _keras(CAT, (2, 3), INT),
        "num_tokens must be set",
    ),
    (
        "type: CategoryEncoding\nnum_tokens: 4\noutput_mode: int",
        [3],
        INT,
        "output_mode",
        11,
        "must be one of",
        _keras(CAT, (2, 3), INT, num_tokens=4, output_mode="int"),
        "Unknown arg for output_mode",
    ),
    (
        "type: CategoryEncoding\nnum_tokens: 4\noutput_mode: count",
        [2, 3],
        INT,
        None,
        7,
        "Keras declares shape (None, 2, 4) but computes (None, 3, 4)",
        None,
        None,
    ),
]


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r[0].replace("\n", " "))
def test_refused_like_keras_with_a_positioned_diagnostic(tmp_path, refused):
    layer_yaml, shape, dtype, field, line, fragment, keras_call, keras_says = refused
    keras_refuses(keras_call, keras_says)
    diag = written(tmp_path, layer_yaml, shape, dtype)
    assert_on_layer_field(diag, field, line, fragment)
