"""Data that would break a run or the machine is refused before step 1 (issue #7, 10-12):
non-finite features and targets, compressed archives too large to decompress, and
`predict --input` files that are not plain numeric archives."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelspec.runtime.data import finite, npfiles
from modelspec.schema.tensors import TensorType
from tests.conftest import ROOT
from tests.runtime.data.test_data import SPARSE, errors, load, npz, xy


def xy_arrays(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    data = xy(n)
    return data["x"], data["y"]


# --- 10: NaN / inf / overflow in features and targets ---------------------------------


def test_csv_nan_inf_and_overflow_are_reported_with_row_line_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c,y\n1,2,3,0\n4,nan,6,1\n7,8,inf,2\n1e309,1,1,0\n")
    data = {"train": {"type": "csv", "path": "d.csv", "label": "y"}}
    (d,) = errors(data, tmp_path, inputs={"x": TensorType((None, 3))})
    assert d.path == "data.train.path"
    assert d.message.startswith("data.train (csv 'd.csv'): the feature matrix holds 3 values")
    assert "not finite" in d.message
    assert "first is in row 2 (line 3), column 'b'" in d.message
    assert d.received == "nan" and "allow_nonfinite: true" in d.hint


def test_allow_nonfinite_opts_out(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n1,nan,0\n2,inf,1\n")
    source = {"type": "csv", "path": "d.csv", "label": "y"}
    ds = load(
        {"train": source, "allow_nonfinite": True}, tmp_path, inputs={"x": TensorType((None, 2))}
    )
    assert np.isnan(ds.train.inputs["x"][0, 1]) and np.isinf(ds.train.inputs["x"][1, 1])


def test_npz_nan_in_validation_features_names_sample_and_feature(tmp_path):
    x, y = xy_arrays()
    x[6, 2] = np.nan
    data = {"train": {"type": "npz", "path": npz(tmp_path, **xy())}}
    data["validation"] = {"type": "npz", "path": npz(tmp_path, "v.npz", x=x, y=y)}
    (d,) = errors(data, tmp_path)
    assert d.path == "data.validation"
    assert "array 'x' holds 1 value that is not finite" in d.message
    assert "sample 6, feature 2" in d.message and "model input 'x'" in d.message


def test_float64_values_overflowing_float32_are_caught(tmp_path):
    x, y = xy_arrays()
    x[3, 0] = 1e39  # finite as float64, inf as the model's float32
    (d,) = errors({"train": {"type": "npz", "path": npz(tmp_path, x=x, y=y)}}, tmp_path)
    assert "too large for float32" in d.message and d.received == "1e+39"


@pytest.mark.parametrize(
    ("loss", "out"),
    [
        ({"y": "mse"}, (None, 1)),
        ({"y": {"type": "BinaryCrossentropy"}}, (None, 1)),
        ({"y": {"type": "CategoricalCrossentropy"}}, (None, 3)),
    ],
    ids=["regression", "binary", "categorical"],
)
def test_nonfinite_float_targets_are_caught(tmp_path, loss, out):
    x, _ = xy_arrays()
    y = np.zeros((10, out[1]))
    y[4, 0] = np.nan
    data = {"train": {"type": "npz", "path": npz(tmp_path, x=x, y=y)}}
    (d,) = errors(data, tmp_path, outputs={"y": TensorType(out)}, losses=loss)
    assert "array 'y' holds 1 value that is not finite" in d.message
    assert "model output 'y'" in d.message and "sample 4" in d.message
    assert load(
        {**data, "allow_nonfinite": True}, tmp_path, outputs={"y": TensorType(out)}, losses=loss
    )


def test_nan_sparse_labels_are_still_refused(tmp_path):
    x, _ = xy_arrays()
    y = np.zeros(10)
    y[2] = np.nan
    data = {"train": {"type": "npz", "path": npz(tmp_path, x=x, y=y)}, "allow_nonfinite": True}
    (d,) = errors(data, tmp_path, losses={"y": SPARSE})
    assert "non-integer" in d.message and "nan in sample 2" in d.received


def test_scan_is_chunked_and_counts_across_chunks(tmp_path, monkeypatch):
    x = np.zeros((1000, 4), np.float32)
    x[[300, 700, 701], 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(1000, np.int64))
    seen: list[int] = []
    real_isfinite = np.isfinite

    def spy(a, *args, **kw):
        seen.append(a.shape[0])
        return real_isfinite(a, *args, **kw)

    monkeypatch.setattr(finite, "CHUNK_BYTES", 16 * 100)  # 100 rows of 4 float32
    monkeypatch.setattr(finite.np, "isfinite", spy)
    source = {"type": "npy", "inputs": {"x": "x.npy"}, "targets": {"y": "y.npy"}}
    (d,) = errors({"train": source}, tmp_path)
    monkeypatch.undo()
    assert max(seen) == 100 and len(seen) == 10
    assert "holds 3 values" in d.message and "sample 300, feature 1" in d.message
    assert d.path == "data.train.inputs.x"


def test_train_with_nan_features_exits_2_before_step_1(tmp_path):
    from modelspec.cli import app

    spec = _tiny_spec(tmp_path)
    x, y = xy_arrays(16)
    x[5, 1] = np.nan
    np.savez(tmp_path / "train.npz", x=x, y=y)
    result = CliRunner().invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "not finite" in result.stderr and "allow_nonfinite" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run/checkpoints").exists()


# --- 11: npz archives are memory-mapped, or decompressed only up to a cap ---------------


def _compressed_zeros(path: Path, rows: int) -> None:
    """What np.savez_compressed writes for zeros((rows, 8)) and a small `y`, streamed
    (and at zlib level 1) so the test neither holds the array nor spends seconds on it."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((0, 8)))
    header["shape"] = (rows, 8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            block = bytes(8 << 20)
            left = rows * 64
            while left:
                member.write(block[: min(left, len(block))])
                left -= min(left, len(block))
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((4, 1)))
        archive.writestr("y.npy", buffer.getvalue())


PROBE = """
import resource, sys
from pathlib import Path
from modelspec.schema.tensors import TensorType
from modelspec.errors import DataError
from modelspec.runtime.data.dataset import load_data
from modelspec.schema.data import DataSpec

def peak_kb():
    # VmHWM belongs to this process image; ru_maxrss carries a parent's peak over exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


before = peak_kb()
try:
    load_data(
        DataSpec.model_validate({"train": {"type": "npz", "path": sys.argv[1]}}),
        model_inputs={"x": TensorType((None, 8))},
        model_outputs={"y": TensorType((None, 1))},
        losses={"y": "mse"},
        seed=0,
        base_dir=Path("."),
        locate=lambda path: ("spec.yaml", 1, 1),
    )
except DataError as error:
    print(error)
print("GROWTH_MB", (peak_kb() - before) // 1024)
"""


def test_huge_compressed_npz_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "zeros.npz"
    rows = 2 * 10**7  # 1.28 GB of float64 once decompressed, a few MB on disk
    _compressed_zeros(path, rows)
    assert path.stat().st_size < 10 << 20
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "array 'x' is compressed and takes 1.2 GiB once decompressed" in done.stdout
    assert "np.savez (uncompressed)" in done.stdout and ".npy" in done.stdout
    growth = int(done.stdout.split("GROWTH_MB")[1])
    assert growth < 200, done.stdout


def test_uncompressed_npz_members_are_memory_mapped(tmp_path):
    x = np.asfortranarray(np.arange(40, dtype=np.float32).reshape(10, 4))
    ds = load({"train": {"type": "npz", "path": npz(tmp_path, x=x, y=np.arange(10) % 3)}}, tmp_path)
    got = ds.train.inputs["x"]
    assert isinstance(got, np.memmap) or isinstance(got.base, np.memmap)
    np.testing.assert_array_equal(got, x)


def test_small_compressed_npz_loads(tmp_path):
    x, y = xy_arrays()
    np.savez_compressed(tmp_path / "c.npz", x=x, y=y)
    ds = load({"train": {"type": "npz", "path": "c.npz"}}, tmp_path)
    np.testing.assert_array_equal(ds.train.inputs["x"], x.astype(np.float32))


def test_compressed_cap_is_a_constant(tmp_path, monkeypatch):
    monkeypatch.setattr(npfiles, "MAX_DECOMPRESSED_BYTES", 100)
    x, y = xy_arrays()
    np.savez_compressed(tmp_path / "c.npz", x=x, y=y)
    (d,) = errors({"train": {"type": "npz", "path": "c.npz"}}, tmp_path)
    assert d.path == "data.train" and "compressed and takes" in d.message


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_member_whose_data_disagrees_with_its_header_is_damaged(tmp_path):
    """The zip lists fewer (or more: a bomb) bytes than the header promises."""
    with zipfile.ZipFile(tmp_path / "d.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _npy_bytes(np.zeros((10, 4)))[:-8])
        archive.writestr("y.npy", _npy_bytes(np.zeros(10)) + bytes(1 << 20))
    (dx, dy) = errors({"train": {"type": "npz", "path": "d.npz"}}, tmp_path)
    assert "array 'x' is damaged" in dx.message and "array 'y' is damaged" in dy.message


def test_object_arrays_are_refused_without_unpickling(tmp_path, monkeypatch):
    np.savez(tmp_path / "o.npz", x=np.array([[1, 2, 3, 4]] * 10, dtype=object), y=np.zeros(10))
    np.save(tmp_path / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    np.save(tmp_path / "y.npy", np.zeros(10))

    def no_unpickling(*args, **kw):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    (d,) = errors({"train": {"type": "npz", "path": "o.npz"}}, tmp_path)
    assert "array 'x' holds Python objects" in d.message and "never" in d.message
    source = {"type": "npy", "inputs": {"x": "o.npy"}, "targets": {"y": "y.npy"}}
    (d,) = errors({"train": source}, tmp_path)
    assert d.path == "data.train.inputs.x" and "file 'o.npy' holds Python objects" in d.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a,b\n1,2\n", "neither a NumPy .npz archive nor an .npy file"),
        (b"PK\x03\x04 not really a zip", "as an .npz archive"),
    ],
    ids=["text", "broken_zip"],
)
def test_files_that_are_not_archives(tmp_path, content, expected):
    (tmp_path / "d.npz").write_bytes(content)
    (d,) = errors({"train": {"type": "npz", "path": "d.npz"}}, tmp_path)
    assert d.path == "data.train.path" and expected in d.message


def test_truncated_npy_file(tmp_path):
    (tmp_path / "x.npy").write_bytes(_npy_bytes(np.zeros((10, 4)))[:-1])
    np.save(tmp_path / "y.npy", np.zeros(10))
    source = {"type": "npy", "inputs": {"x": "x.npy"}, "targets": {"y": "y.npy"}}
    (d,) = errors({"train": source}, tmp_path)
    assert "file 'x.npy' is truncated" in d.message


# --- 12: predict --input ----------------------------------------------------------------


def _tiny_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "modelspec: 1\nname: tiny\nseed: 0\n"
        "data: {train: {type: npz, path: train.npz}, batch_size: 8}\n"
        "model:\n  inputs: {x: {shape: [4]}}\n  layers: [{name: y, type: Dense, units: 3}]\n"
        "loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n"
        "optimizer: {type: Adam, learning_rate: 0.01}\ntrain: {epochs: 1}\n"
    )
    return spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from modelspec.cli import app

    root = tmp_path_factory.mktemp("tiny")
    spec = _tiny_spec(root)
    np.savez(root / "train.npz", **xy(16))
    result = CliRunner().invoke(app, ["train", str(spec), "--run-dir", str(root / "run")])
    assert result.exit_code == 0, result.output
    return spec, root / "run"


def _predict(trained, path: Path):
    from modelspec.cli import app

    spec, run = trained
    args = ["predict", str(spec), "--run-dir", str(run), "--input", str(path)]
    return CliRunner().invoke(app, [*args, "--output", str(path.with_suffix(".out.npz"))])


def _write_text(path: Path) -> None:
    path.write_text("x\n1,2,3,4\n")


CASES = {
    "object": (lambda p: np.savez(p, x=np.array([[1, 2, 3, 4]], dtype=object)), "Python objects"),
    "strings": (lambda p: np.savez(p, x=np.array([["a", "b", "c", "d"]])), "holds text"),
    "complex": (lambda p: np.savez(p, x=np.ones((2, 4), complex)), "complex numbers"),
    "dates": (
        lambda p: np.savez(p, x=np.zeros((2, 4), "datetime64[s]")),
        "holds dates",
    ),
    "not_a_zip": (_write_text, "neither a NumPy .npz archive nor an .npy file"),
    "npy": (lambda p: p.write_bytes(_npy_bytes(np.zeros((2, 4)))), "single array (.npy)"),
    "zero_rows": (lambda p: np.savez(p, x=np.zeros((0, 4))), "0 rows: there is nothing to predict"),
    "missing": (lambda p: np.savez(p, inputs=np.zeros((2, 4))), "no array named 'x'"),
    "shape": (lambda p: np.savez(p, x=np.zeros((2, 5))), "has shape (N, 5)"),
    "nan": (lambda p: np.savez(p, x=np.full((2, 4), np.nan)), "not finite"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_predict_refuses_bad_input_with_exit_2(trained, tmp_path, case):
    write, expected = CASES[case]
    path = tmp_path / "in.npz"
    write(path)
    result = _predict(trained, path)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and str(path) in result.stderr
    assert "--input" in result.stderr and "Traceback" not in result.output
    assert not path.with_suffix(".out.npz").exists()


def test_predict_ignores_extra_arrays(trained, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, **xy(5))  # x and the targets y
    result = _predict(trained, path)
    assert result.exit_code == 0, result.output
    assert np.load(path.with_suffix(".out.npz"))["y"].shape == (5, 3)
