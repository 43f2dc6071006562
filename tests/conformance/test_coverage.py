"""Every layer type of the schema has a shape rule, a builder and conformance cases."""

from modelspec.compiler.layers import BUILDERS
from modelspec.compiler.shapes import RULES
from modelspec.schema.layers import LAYER_TYPES
from tests.conformance import (
    test_conv_pool_layers,
    test_core_layers,
    test_norm_merge_layers,
    test_recurrent_attention_layers,
)


def test_every_layer_type_is_covered():
    cases = [
        case
        for module in (
            test_core_layers,
            test_conv_pool_layers,
            test_norm_merge_layers,
            test_recurrent_attention_layers,
        )
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, list)
        for case in value
    ]
    covered = {case.layer["type"] for case in cases}
    assert set(LAYER_TYPES) <= set(RULES)
    assert set(LAYER_TYPES) <= set(BUILDERS)
    assert covered == set(LAYER_TYPES), sorted(set(LAYER_TYPES) - covered)
