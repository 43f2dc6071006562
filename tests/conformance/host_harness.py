"""The conformance contract of host layers (spec classes with a `host` reference: the
text layers, which Keras runs with TensorFlow, absent here).

Keras's layers cannot run without TensorFlow, so a `HostCase` carries the expected
values, computed by hand from Keras's algorithm (its source, docstrings and tests).
`run_host_case` checks, for one case:
1. the spec loads, and the host layer's `needs_adapt` is true exactly when the spec
   gives no vocabulary;
2. after `adapt` on the case's training data, the state is the expected one (Keras's
   `get_vocabulary()` and idf weights);
3. the output of the case's batch equals the expected array, with the inferred
   output's per-sample shape and dtype (the batch axis first);
4. the state survives JSON: a fresh layer given it computes the same output;
5. spec -> canonical dump -> spec round-trips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelspec.compiler.infer import input_types
from modelspec.compiler.load import load
from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.vocabulary import load_reference


@dataclass
class HostCase:
    """One host-layer configuration with hand-computed expectations. `shape` is the
    input's shape without the batch axis; `adapt` the training array (None: the spec
    gives the vocabulary); `state` the expected state after adapting (None: not
    checked); `x` the batch and `expected` its output."""

    id: str
    layer: dict[str, Any]
    shape: tuple[int | None, ...]
    dtype: str
    x: list[Any]
    expected: list[Any]
    adapt: list[Any] | None = None
    state: dict[str, Any] | None = None
    atol: float = 1e-6


def host_spec(layer: dict[str, Any], shape: tuple, dtype: str) -> dict[str, Any]:
    return {
        "modelspec": 1,
        "name": "host_conformance",
        "model": {
            "inputs": {"x": {"shape": list(shape), "dtype": dtype}},
            "layers": [{**layer, "name": "under_test", "inputs": "x"}],
        },
    }


def build_host(layer: dict[str, Any], shape: tuple, dtype: str):
    """(the host layer object, its inferred shape) for a layer spec mapping."""
    checked = load(host_spec(layer, shape, dtype))
    node = checked.graph.nodes[0]
    cls = load_reference(type(node.layer).host)
    inferred = checked.shapes[node.name]
    return cls(node.layer, input_types(checked)["x"], inferred), inferred


def as_array(rows: list[Any], dtype: str) -> np.ndarray:
    """A batch as the data pipeline hands it: object arrays of `str`, or integers."""
    if dtype == "string":
        out = np.empty(np.shape(rows), dtype=object)
        out[...] = rows if np.ndim(rows) else rows
        return out
    return np.asarray(rows, dtype=dtype)


def run_host_case(case: HostCase) -> None:
    layer, inferred = build_host(case.layer, case.shape, case.dtype)
    given = "vocabulary" in case.layer or case.layer["type"] == "Hashing"
    assert layer.needs_adapt == (not given), case.id
    if case.adapt is not None:
        layer.adapt(as_array(case.adapt, case.dtype))
        assert not layer.needs_adapt
    state = layer.get_state()
    if case.state is not None:
        assert state.keys() == case.state.keys(), state
        assert state.get("vocabulary") == case.state.get("vocabulary"), state
        if "idf_weights" in case.state:
            np.testing.assert_allclose(
                state["idf_weights"], case.state["idf_weights"], rtol=1e-6, atol=1e-7
            )
    x = as_array(case.x, case.dtype)
    out = layer(x)
    want = np.asarray(case.expected)
    assert out.dtype == np.dtype(inferred.output.dtype), (out.dtype, inferred.output)
    assert out.shape == (len(x), *inferred.output.shape[1:]), (out.shape, inferred.output)
    np.testing.assert_allclose(out, want, atol=case.atol, err_msg=case.id)
    fresh, _ = build_host(case.layer, case.shape, case.dtype)
    fresh.set_state(json.loads(json.dumps(state)))
    assert not fresh.needs_adapt
    np.testing.assert_array_equal(fresh(x), out)
    spec_class = LAYER_TYPES[case.layer["type"]]
    parsed = spec_class.model_validate(case.layer)
    assert spec_class.model_validate(parsed.dump()) == parsed
