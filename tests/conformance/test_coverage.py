"""Every registered layer type has shape inference, an NNX class and conformance cases.

Everything here derives from the registry (`LAYER_TYPES`) and from the conformance
modules found on disk, so a new layer type is checked without being listed anywhere.
Host layers (spec classes with a `host` reference: the text layers, run in NumPy in
the data pipeline) have a host class instead of an NNX class, and `HostCase`s (in
module-level upper-case lists, e.g. `HOST_CASES`) instead of harness `Case`s.
"""

import importlib
import pkgutil

import pytest
from flax import nnx

import tests.conformance
from modelspec.compiler.layers import nnx_class
from modelspec.compiler.layers.base import Layer
from modelspec.schema.layers import FAMILIES, LAYER_TYPES, LayerSpec
from modelspec.schema.vocabulary import load_reference
from tests.conformance.harness import Case
from tests.conformance.host_harness import HostCase

HOST_METHODS = ("adapt", "get_state", "set_state", "__call__")
"""What the data pipeline calls on a host layer (`runtime/host_stage.py`)."""


def conformance_cases() -> list[Case | HostCase]:
    """The cases of every `test_*` module of this package (module-level upper-case lists)."""
    cases = []
    for info in pkgutil.iter_modules(tests.conformance.__path__):
        if not info.name.startswith("test_") or info.name == "test_coverage":
            continue
        module = importlib.import_module(f"tests.conformance.{info.name}")
        cases += module_cases(module)
    return cases


def module_cases(module) -> list[Case | HostCase]:
    """The `Case`s and `HostCase`s of a module's upper-case lists."""
    return [
        c
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, list)
        for c in value
        if isinstance(c, Case | HostCase)
    ]


def implementation(spec_class: type[LayerSpec]) -> type:
    """The class that runs the layer: its host class, or its NNX class."""
    return load_reference(spec_class.host) if spec_class.host else nnx_class(spec_class)


def test_every_layer_type_is_covered():
    covered = {case.layer["type"] for case in conformance_cases()}
    assert covered == set(LAYER_TYPES), sorted(set(LAYER_TYPES) - covered)


@pytest.mark.parametrize("type_name", list(LAYER_TYPES))
def test_spec_class_has_inference_and_an_nnx_class(type_name):
    spec_class = LAYER_TYPES[type_name]
    assert spec_class.infer is not LayerSpec.infer, f"{type_name} has no infer()"
    if spec_class.host:
        built = implementation(spec_class)
        assert not spec_class.nnx, f"{type_name} names both a host and an NNX class"
        missing = [m for m in HOST_METHODS if not callable(getattr(built, m, None))]
        assert isinstance(built, type) and not missing, (spec_class.host, missing)
        assert isinstance(getattr(built, "needs_adapt", None), bool), spec_class.host
        return
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
    assert implementation(spec_class).__module__ == f"modelspec.compiler.layers.{family}"
    module = importlib.import_module(f"tests.conformance.test_{family}")
    wanted = HostCase if spec_class.host else Case
    cases = [c for c in module_cases(module) if isinstance(c, wanted)]
    assert any(c.layer["type"] == type_name for c in cases), f"test_{family}.py"
