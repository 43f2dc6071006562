"""Every registered layer type has shape inference, an NNX class and conformance cases.

Everything here derives from the registry (`LAYER_TYPES`) and from the conformance
modules found on disk, so a new layer type is checked without being listed anywhere.
"""

import importlib
import pkgutil

import pytest
from flax import nnx

import tests.conformance
from modelspec.compiler.layers import nnx_class
from modelspec.compiler.layers.base import Layer
from modelspec.schema.layers import FAMILIES, LAYER_TYPES, LayerSpec
from tests.conformance.harness import Case


def conformance_cases() -> list[Case]:
    """The cases of every `test_*` module of this package (module-level upper-case lists)."""
    cases = []
    for info in pkgutil.iter_modules(tests.conformance.__path__):
        if not info.name.startswith("test_") or info.name == "test_coverage":
            continue
        module = importlib.import_module(f"tests.conformance.{info.name}")
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, list):
                cases += [c for c in value if isinstance(c, Case)]
    return cases


def test_every_layer_type_is_covered():
    covered = {case.layer["type"] for case in conformance_cases()}
    assert covered == set(LAYER_TYPES), sorted(set(LAYER_TYPES) - covered)


@pytest.mark.parametrize("type_name", list(LAYER_TYPES))
def test_spec_class_has_inference_and_an_nnx_class(type_name):
    spec_class = LAYER_TYPES[type_name]
    assert spec_class.infer is not LayerSpec.infer, f"{type_name} has no infer()"
    built = nnx_class(spec_class)
    assert isinstance(built, type) and issubclass(built, nnx.Module), spec_class.nnx
    assert issubclass(built, Layer), f"{spec_class.nnx} does not derive from layers.base.Layer"


@pytest.mark.parametrize("type_name", list(LAYER_TYPES))
def test_layer_type_lives_in_its_family(type_name):
    """Spec class in schema/layers/<family>.py, its NNX class in compiler/layers/<family>.py,
    its cases in tests/conformance/test_<family>.py: one place per family."""
    spec_class = LAYER_TYPES[type_name]
    family = spec_class.__module__.rsplit(".", 1)[-1]
    assert family in FAMILIES, spec_class.__module__
    assert nnx_class(spec_class).__module__ == f"modelspec.compiler.layers.{family}"
    module = importlib.import_module(f"tests.conformance.test_{family}")
    assert any(c.layer["type"] == type_name for c in module.CASES), f"test_{family}.py"
