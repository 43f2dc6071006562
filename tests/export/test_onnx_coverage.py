"""ONNX lowering coverage: which layer types have no lowering yet (printed, so the gap
is visible in every test run), and every type that has one is exercised by the parity
test through its conformance cases."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

from modelspec.schema.layers import LAYER_TYPES  # noqa: E402
from modelspec.schema.vocabulary import load_reference  # noqa: E402
from tests.export.test_onnx import LOWERED_CASES, REFUSED  # noqa: E402


def test_types_without_lowering_are_listed(capsys) -> None:
    missing = sorted(t for t, cls in LAYER_TYPES.items() if not cls.onnx and not cls.host)
    with capsys.disabled():
        print(f"\nlayer types without an ONNX lowering ({len(missing)}): {', '.join(missing)}")
    assert len(missing) < len(LAYER_TYPES)


@pytest.mark.parametrize("type_", sorted(t for t, c in LAYER_TYPES.items() if c.onnx))
def test_lowered_type_has_parity_cases(type_: str) -> None:
    """Its reference resolves, and at least one of its conformance cases is exported
    (not refused) and compared in the parity test."""
    assert callable(load_reference(LAYER_TYPES[type_].onnx))
    exported = [c.id for c in LOWERED_CASES if c.layer["type"] == type_ and c.id not in REFUSED]
    assert exported, f"{type_} has an ONNX lowering but no parity case"


def test_refusals_name_real_cases() -> None:
    known = {c.id for c in LOWERED_CASES}
    assert set(REFUSED) <= known, sorted(set(REFUSED) - known)
