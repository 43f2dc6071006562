"""Conformance: regularization layers against Keras."""

from tests.conformance.harness import Case

CASES: list[Case] = []
