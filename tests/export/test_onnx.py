"""ONNX export parity: every conformance case of a lowered layer type, every spec in
`specs/` and `examples/`, and the digits CNN trained for one epoch, run in onnxruntime
and compared with modelspec's own inference (`ModelState.apply(training=False)`).

Weights are random (every variable redrawn, so biases and moving statistics matter),
inputs are the conformance harness's. A layer configuration the exporter refuses must
be listed in `REFUSED` (with why), so a refusal is a visible, deliberate gap.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from modelspec.compiler.load import load  # noqa: E402
from modelspec.compiler.model import CompiledModel, split  # noqa: E402
from modelspec.errors import SpecError  # noqa: E402
from modelspec.runtime.export.onnx_export import build_onnx, validate  # noqa: E402
from modelspec.schema.layers import LAYER_TYPES  # noqa: E402
from tests.conformance.harness import Case, make_inputs, spec_for  # noqa: E402
from tests.conftest import runnable  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ATOL = RTOL = 1e-5


def conformance_cases() -> list[Case]:
    """Every `CASES` entry of the conformance modules (tests/conformance/test_*.py)."""
    import tests.conformance as pkg

    cases: list[Case] = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("test_"):
            try:
                module = importlib.import_module(f"tests.conformance.{info.name}")
            except pytest.skip.Exception:  # a module needing an absent package (TensorFlow)
                continue
            cases += [c for c in getattr(module, "CASES", []) if isinstance(c, Case)]
    return cases


ALL_CASES = conformance_cases()
LOWERED_CASES = [c for c in ALL_CASES if LAYER_TYPES[c.layer["type"]].onnx]

REFUSED: dict[str, str] = {
    "relu_bool": "Keras's ReLU keeps bool arithmetic",
    "relu_bool_slope": "Keras's ReLU keeps bool arithmetic",
    "relu_uint8_slope": "-x wraps around in uint8 before the slope",
    "avgpool_int": "Keras sums integer windows in their own type (wrap-around)",
    "avgpool1d_int": "Keras sums integer windows in their own type (wrap-around)",
    "avgpool3d_int": "Keras sums integer windows in their own type (wrap-around)",
    "center_crop_larger": "Keras resizes images smaller than the target: not lowered yet",
    "center_crop_one_axis_larger": "Keras resizes images smaller than the target",
    "center_crop_variable": "unknown image size: the crop window is not static",
    "up2d_lanczos3_uint8": "interpolated ints round half to even: ties depend on sum order",
    "up2d_lanczos5_int32": "interpolated ints round half to even: ties depend on sum order",
    "up2d_bilinear_int": "interpolated ints round half to even: ties depend on sum order",
    "up2d_bicubic_int8": "interpolated ints round half to even: ties depend on sum order",
    "resize_int32": "interpolated ints round half to even: ties depend on sum order",
    "resize_uint8_pad": "Keras pads ints with a float band: not lowered",
}
"""Conformance case id -> why its configuration is refused by the ONNX export."""

MIXED = {"mixed_bfloat16": (5e-2, 2e-2), "mixed_float16": (1e-2, 4e-3)}
"""(atol, rtol) for a layer under a mixed dtype policy: the model computes it in half
precision, the export in float32 (by design, see `onnx_export`), so they agree to the
half type's rounding (the tolerances of tests/conformance/test_precision.py)."""

ILL_CONDITIONED = {
    "bidirectional_lstm_imdb.yaml": "200 LSTM steps: a 1e-7 weight change moves JAX by 3e-4",
    "sequence_gru.yaml": "48 GRU + LSTM steps: a 1e-7 weight change moves JAX by 7e-5",
    "timeseries_weather_forecasting.yaml": "LSTM: a 1e-7 weight change moves JAX by 9e-3",
    "timeseries_anomaly_detection.yaml": "outputs ~1e3: a 1e-7 weight change moves JAX by 2e-2",
    "text_classifier.yaml": "a 1e-7 weight change moves JAX's logits by 4e-4",
    "gpt_tiny.yaml": "8 blocks, logits ~40: a 1e-7 weight change moves JAX by 1e-4",
}
"""Shipped specs whose outputs under N(0, 1) weights move past 1e-5 from float rounding
alone (JAX against itself, with every weight scaled by 1 + 1e-7): compared with their
initialized weights instead, as `modelspec export --untrained` writes them."""


def randomize(state, rng: np.random.Generator):
    """Every variable redrawn (variances kept positive), like the conformance harness."""

    def draw(path, leaf):
        name = "/".join(str(getattr(p, "key", p)) for p in path)
        value = rng.normal(size=leaf.shape).astype(np.float32)
        if "variance" in name:
            value = np.abs(value) + 0.5
        return jnp.asarray(value, leaf.dtype)

    return state.replace(
        params=jax.tree_util.tree_map_with_path(draw, state.params),
        batch_stats=jax.tree_util.tree_map_with_path(draw, state.batch_stats),
        frozen=jax.tree_util.tree_map_with_path(draw, state.frozen),
    )


def run_onnx(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model in an onnxruntime CPU session, outputs by name."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feeds = {k: _ort_value(v) for k, v in inputs.items()}
    return dict(zip(names, session.run(names, feeds), strict=True))


def _ort_value(x: np.ndarray):
    """numpy -> onnxruntime input; bfloat16 (ml_dtypes) goes in as its raw bits, since
    onnxruntime's numpy bridge has no bfloat16."""
    if x.dtype.name != "bfloat16":
        return x
    bits = np.ascontiguousarray(x).view(np.uint16)
    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, onnx.TensorProto.BFLOAT16)


def wide(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.name in ("bfloat16", "float16") else x


def assert_parity(
    spec, state, inputs: dict[str, np.ndarray], what: str, tol: tuple = (ATOL, RTOL)
) -> None:
    """Export `state`, run it on `inputs`, compare with `state.apply` (inference)."""
    model = build_onnx(spec, state)
    validate(model)
    assert not model.graph.value_info, "value_info must not be stored (onnxruntime-web)"
    ours, _ = state.apply({k: jnp.asarray(v) for k, v in inputs.items()}, training=False)
    feeds = {k: v for k, v in inputs.items()}
    got = run_onnx(model, feeds)
    assert set(got) == set(spec.graph.outputs)
    for name in spec.graph.outputs:
        want = wide(ours[name])
        assert got[name].shape == want.shape, f"{what}: {name} shape {got[name].shape}"
        np.testing.assert_allclose(
            wide(got[name]), want, atol=tol[0], rtol=tol[1], err_msg=f"{what} {name}"
        )


@pytest.mark.parametrize("case", LOWERED_CASES, ids=lambda c: c.id)
def test_layer_parity(case: Case) -> None:
    spec = load(spec_for(case))
    rng = np.random.default_rng(0)
    state = randomize(split(CompiledModel(spec, seed=0)), rng)
    inputs = make_inputs(case, rng)
    if case.id in REFUSED:
        with pytest.raises(SpecError, match="ONNX"):
            build_onnx(spec, state)
        return
    assert_parity(
        spec, state, inputs, case.id, MIXED.get(case.layer.get("dtype_policy"), (ATOL, RTOL))
    )


def spec_files() -> list[Path]:
    """Every model spec shipped in `specs/` and `examples/`."""
    files = sorted((ROOT / "specs").rglob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))
    return runnable([p for p in files if "model:" in p.read_text()])


def random_inputs(spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs of the device model (unknown sizes 6; ids small enough for any
    vocabulary in the shipped specs)."""
    from modelspec.compiler.host_layers import device_input_types

    out = {}
    for name, t in device_input_types(spec).items():
        shape = (2, *(6 if d is None else d for d in t.shape[1:]))
        if t.dtype.startswith(("int", "uint")):
            out[name] = rng.integers(0, 2, shape).astype(t.dtype)
        else:
            out[name] = rng.normal(size=shape).astype(t.dtype)
    return out


@pytest.mark.parametrize(
    "path", spec_files(), ids=lambda p: str(getattr(p, "values", [p])[0].relative_to(ROOT))
)
def test_spec_parity(path: Path) -> None:
    """Each shipped spec whose layers all have lowerings exports and matches
    `ModelState.apply`; the others are skipped naming the missing lowerings."""
    from modelspec.compiler.host_layers import is_host

    spec = load(path)
    missing = sorted(
        {
            f"{n.layer.type}"
            for n in spec.graph.nodes
            if not is_host(n.layer) and not type(n.layer).onnx
        }
    )
    if missing:
        pytest.skip(f"no ONNX lowering yet for: {', '.join(missing)}")
    rng = np.random.default_rng(0)
    state = split(CompiledModel(spec))
    if path.name not in ILL_CONDITIONED:
        state = randomize(state, rng)
    assert_parity(spec, state, random_inputs(spec, rng), path.name)


def invoke(*args: object):
    from typer.testing import CliRunner

    from modelspec.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_digits_cnn_trained_export(tmp_path: Path) -> None:
    """Must-show 1: the digits CNN trained one epoch, exported by the CLI; onnxruntime's
    predictions equal `modelspec predict` and its validation accuracy is the same."""
    from modelspec.runtime.session import open_session
    from modelspec.runtime.trainer import train

    spec_path, run, sets = (
        ROOT / "examples/digits/cnn.yaml",
        tmp_path / "run",
        ["--set", "train.epochs=1"],
    )
    history = train(spec_path, run, ["train.epochs=1"], progress=False)
    out = tmp_path / "digits.onnx"
    result = invoke("export", spec_path, "--format", "onnx", "-o", out, "--run-dir", run, *sets)
    assert result.exit_code == 0, result.output
    validation = open_session(spec_path, ["train.epochs=1"]).data.validation
    (x,) = validation.inputs.values()
    (y,) = validation.targets.values()
    np.savez(tmp_path / "val.npz", pixels=x)
    pred = tmp_path / "pred.npz"
    result = invoke(
        "predict",
        spec_path,
        "--input",
        tmp_path / "val.npz",
        "--output",
        pred,
        "--run-dir",
        run,
        *sets,
    )
    assert result.exit_code == 0, result.output
    (ours,) = np.load(pred).values()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert session.get_inputs()[0].shape[0] == "batch"
    (theirs,) = session.run(None, {"pixels": x})
    np.testing.assert_allclose(theirs, ours, atol=ATOL, rtol=RTOL)
    accuracy_onnx = float(np.mean(np.argmax(theirs, -1) == y))
    assert accuracy_onnx == float(np.mean(np.argmax(ours, -1) == y))
    assert accuracy_onnx == pytest.approx(history.epochs[-1]["val_accuracy"], abs=1e-6)
    assert not onnx.load(str(out)).graph.value_info


LSTM_SPEC = """\
name: onnx-refusal
model:
  inputs: {steps: {shape: [5, 3]}}
  layers:
    - {name: encoder, type: LSTM, units: 4}
    - {name: head, type: Dense, units: 2}
"""


def test_unlowered_layer_refused_by_cli(tmp_path: Path, monkeypatch) -> None:
    """A layer type without a lowering (every type has one now, so LSTM's is taken
    away for the test): exit 2, the layer named with its type and position, nothing
    written."""
    monkeypatch.setattr(LAYER_TYPES["LSTM"], "onnx", "")
    spec = tmp_path / "spec.yaml"
    spec.write_text(LSTM_SPEC)
    out = tmp_path / "model.onnx"
    result = invoke("export", spec, "--format", "onnx", "--untrained", "-o", out)
    assert result.exit_code == 2, result.output
    assert "spec.yaml:5:" in result.output
    assert "layer 'encoder' (LSTM) has no ONNX lowering" in result.output
    assert not out.exists()


def test_lowering_refusal_is_positioned() -> None:
    """A configuration a lowering cannot express exactly is a positioned SpecError at
    the layer's inputs (here average pooling of integers)."""
    spec = load(
        {
            "modelspec": 1,
            "name": "refuse",
            "model": {
                "inputs": {"x": {"shape": [4, 2], "dtype": "int32"}},
                "layers": [{"type": "AveragePooling1D", "pool_size": 2}],
            },
        }
    )
    with pytest.raises(SpecError, match=r"model\.layers\[0\]\.inputs: AveragePooling1D on int32"):
        build_onnx(spec, split(CompiledModel(spec)))
