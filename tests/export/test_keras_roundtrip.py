"""spec -> `export_keras` -> `keras.saving.load_model` -> Keras's predictions equal ours
(every spec in specs/ and examples/, and one-layer models of the conformance cases);
and spec -> .keras -> `modelspec import` -> the same model section."""

from __future__ import annotations

import importlib
from pathlib import Path

import keras
import numpy as np
import pytest

from modelspec.compiler.host_layers import device_input_types
from modelspec.compiler.load import load
from modelspec.runtime.export.keras_file import export_keras
from modelspec.runtime.keras_import.importer import import_keras
from modelspec.schema.layers import FAMILIES, LAYER_TYPES
from tests.conformance.harness import spec_for
from tests.conformance.keras_reference import REFERENCE
from tests.conftest import ROOT, runnable
from tests.export.keras_helpers import device_inputs, ours, random_session

SPECS = runnable(
    sorted((ROOT / "specs").rglob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))
)
CUSTOM = {"keras_hub>PositionEmbedding": REFERENCE["PositionEmbedding"]}
"""keras_hub's layer, which the exporter names by its registered name (keras_hub itself
cannot be installed here: it needs TensorFlow Text)."""


def _cases() -> list:
    """Per family, its first conformance case; and per layer type with weights (whose
    place in Keras's weights file the exporter decides), its first case."""
    chosen = {}
    for family in FAMILIES:
        module = importlib.import_module(f"tests.conformance.test_{family}")
        cases = [c for c in getattr(module, "CASES", []) if not LAYER_TYPES[c.layer["type"]].host]
        if cases:
            chosen.setdefault(cases[0].layer["type"], cases[0])
        for case in cases:
            t = case.layer["type"]
            if t not in chosen and load(spec_for(case)).shapes["under_test"].params:
                chosen[t] = case
    return list(chosen.values())


def test_keras_class_names_known() -> None:
    """Every layer type is a `keras.layers` class of the same name, or listed where the
    exporter writes it otherwise (an alias, or a layer outside Keras)."""
    from modelspec.runtime.export.keras_file import OUTSIDE_KERAS
    from modelspec.runtime.keras_import.layout import KERAS_CLASSES

    for t in LAYER_TYPES:
        cls = getattr(keras.layers, t, None)
        if cls is None:
            assert t in OUTSIDE_KERAS, t
        else:
            assert KERAS_CLASSES.get(t, t) == cls.__name__, t


def _check(session, state, path: Path) -> None:
    export_keras(session, state, path)
    model = keras.saving.load_model(path, custom_objects=CUSTOM)
    x = device_inputs(session.spec)
    names = list(device_input_types(session.spec))
    got = model.predict([x[n] for n in names] if len(names) > 1 else x[names[0]], verbose=0)
    got = got if isinstance(got, list | tuple) else [got]
    want = ours(session, state, x)
    assert len(got) == len(session.spec.graph.outputs)
    for name, value in zip(session.spec.graph.outputs, got, strict=True):
        np.testing.assert_allclose(
            np.asarray(value, np.float32),
            np.asarray(want[name], np.float32),
            atol=1e-5,
            rtol=1e-5,
            err_msg=name,
        )


@pytest.mark.parametrize(
    "path", SPECS, ids=lambda p: str(getattr(p, "values", [p])[0].relative_to(ROOT))
)
def test_spec_exports_to_keras(path: Path, tmp_path: Path) -> None:
    session, state = random_session(path)
    _check(session, state, tmp_path / "model.keras")
    if session.host:
        assert (tmp_path / "preprocessing.json").is_file()


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_layer_exports_to_keras(case, tmp_path: Path) -> None:
    session, state = random_session(spec_for(case))
    _check(session, state, tmp_path / "layer.keras")


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "specs/resnet_small.yaml",
        ROOT / "specs/keras_io/bidirectional_lstm_imdb.yaml",
        ROOT / "specs/transformer_encoder.yaml",
        ROOT / "examples/digits/cnn.yaml",
    ],
    ids=lambda p: p.stem,
)
def test_spec_keras_spec_round_trip(path: Path, tmp_path: Path) -> None:
    """The imported spec is the same model, modulo defaults: same inputs, layers (every
    field with defaults filled in, each called on the same tensors) and outputs; blocks
    come back expanded."""
    session, state = random_session(path)
    export_keras(session, state, tmp_path / "m.keras")
    import_keras(tmp_path / "m.keras", tmp_path / "back.yaml")
    assert _model(load(tmp_path / "back.yaml")) == _model(session.spec)


def _model(checked) -> dict:
    inputs = {n: (list(i.shape), i.dtype) for n, i in checked.model.inputs.items()}
    layers = [
        (n.name, n.layer.model_dump(mode="json", exclude={"inputs"}), n.kind, n.args)
        for n in sorted(checked.graph.nodes, key=lambda n: n.index)
    ]
    return {"inputs": inputs, "layers": layers, "outputs": checked.graph.outputs}


def test_export_refuses_other_suffix(tmp_path: Path) -> None:
    from modelspec.errors import SpecError

    session, state = random_session(ROOT / "specs/mlp_base.yaml")
    with pytest.raises(SpecError, match=r"\*\.keras"):
        export_keras(session, state, tmp_path / "model.zip")
