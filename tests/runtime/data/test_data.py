"""The `data:` section: sources, deterministic batching, and checks before step 1."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from modelspec.errors import DataError
from modelspec.runtime.data.dataset import ArrayDataset, load_data, split_index
from modelspec.schema.data import SOURCE_TYPES, DataSpec
from modelspec.schema.tensors import TensorType

SPARSE = {"type": "SparseCategoricalCrossentropy", "from_logits": True}


class Locator:
    """Stands in for the YAML position table: remembers what was looked up."""

    def __init__(self) -> None:
        self.paths: list[tuple] = []

    def __call__(self, path: tuple) -> tuple[str, int, int]:
        self.paths.append(path)
        return ("spec.yaml", 7, 3)


def load(
    data: dict,
    tmp_path: Path,
    *,
    inputs: dict | None = None,
    outputs: dict | None = None,
    losses: dict | None = None,
):
    return load_data(
        DataSpec.model_validate(data),
        model_inputs=inputs or {"x": TensorType((None, 4))},
        model_outputs=outputs or {"y": TensorType((None, 3))},
        losses={"y": SPARSE} if losses is None else losses,
        seed=0,
        base_dir=tmp_path,
        locate=Locator(),
    )


def errors(data: dict, tmp_path: Path, **kw) -> list:
    with pytest.raises(DataError) as info:
        load(data, tmp_path, **kw)
    return info.value.diagnostics


def npz(tmp_path: Path, name: str = "d.npz", **arrays) -> str:
    np.savez(tmp_path / name, **arrays)
    return name


def xy(n: int = 10, classes: int = 3) -> dict:
    return {"x": np.arange(n * 4, dtype=np.float64).reshape(n, 4), "y": np.arange(n) % classes}


# --- schema -----------------------------------------------------------------------------


def test_schema_defaults_and_sources() -> None:
    spec = DataSpec.model_validate({"train": {"type": "sklearn", "name": "iris"}})
    assert (spec.batch_size, spec.shuffle, spec.drop_remainder) == (32, True, False)
    assert spec.validation is None and spec.validation_split is None
    assert SOURCE_TYPES[:5] == ("sklearn", "npz", "npy", "csv", "image_folder")
    assert "padded" in DataSpec.__doc__ and "mask" in DataSpec.__doc__
    schema = DataSpec.model_json_schema()
    assert schema["properties"]["batch_size"]["description"]


@pytest.mark.parametrize(
    "data",
    [
        {"train": {"type": "parquet", "path": "a"}},
        {"train": {"type": "sklearn", "name": "mnist"}},
        {"train": {"type": "csv", "path": "a.csv"}},  # label is required
        {"train": {"type": "csv", "path": "a.csv", "label": "y", "header": False}},
        {"train": {"type": "sklearn", "name": "iris"}, "validation_split": 1.0},
        {"train": {"type": "sklearn", "name": "iris"}, "batch_size": 0},
        {"train": {"type": "npz", "path": "a.npz", "input": {}}},
    ],
)
def test_schema_rejects(data: dict) -> None:
    with pytest.raises(ValidationError):
        DataSpec.model_validate(data)


def test_validation_and_split_are_exclusive() -> None:
    with pytest.raises(ValidationError) as info:
        DataSpec.model_validate(
            {
                "train": {"type": "sklearn", "name": "iris"},
                "validation": {"type": "sklearn", "name": "iris"},
                "validation_split": 0.1,
            }
        )
    assert "`validation` and `validation_split` are mutually exclusive" in str(info.value)


# --- sources ----------------------------------------------------------------------------


def test_sklearn_digits_with_keras_split() -> None:
    ds = load(
        {"train": {"type": "sklearn", "name": "digits"}, "validation_split": 0.2},
        Path("."),
        inputs={"pixels": TensorType((None, 64))},
        outputs={"logits": TensorType((None, 10))},
        losses={"logits": SPARSE},
    )
    assert (len(ds.train), len(ds.validation)) == (1437, 360)
    assert ds.train.inputs["pixels"].dtype == np.float32
    assert ds.train.targets["logits"].dtype == np.int32
    assert ds.train.targets["logits"].shape == (1437,)


def test_sklearn_regression_label_reshaped() -> None:
    ds = load(
        {"train": {"type": "sklearn", "name": "diabetes"}},
        Path("."),
        inputs={"x": TensorType((None, 10))},
        outputs={"y": TensorType((None, 1))},
        losses={"y": {"type": "MeanSquaredError"}},
    )
    assert ds.train.targets["y"].shape == (442, 1) and ds.validation is None


def test_npz_default_names_and_mapping(tmp_path: Path) -> None:
    name = npz(tmp_path, **xy())
    ds = load({"train": {"type": "npz", "path": name}}, tmp_path)
    assert ds.train.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(ds.train.targets["y"], np.arange(10) % 3)
    # Named like the model input/output, and an explicit mapping; absolute path too.
    arrays = xy()
    npz(tmp_path, "m.npz", feats=arrays["x"], image=arrays["x"], labels=arrays["y"])
    ds = load(
        {"train": {"type": "npz", "path": str(tmp_path / "m.npz"), "targets": {"y": "labels"}}},
        Path("/"),
        inputs={"image": TensorType((None, 4))},
    )
    assert set(ds.train.inputs) == {"image"} and len(ds.train) == 10


def test_npz_loss_free_output_needs_no_target(tmp_path: Path) -> None:
    name = npz(tmp_path, x=xy()["x"], y=xy()["y"])
    ds = load(
        {"train": {"type": "npz", "path": name}},
        tmp_path,
        outputs={"y": TensorType((None, 3)), "aux": TensorType((None, 2))},
    )
    assert set(ds.train.targets) == {"y"}


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "x.npy", np.ones((6, 2, 2), np.float32))
    np.save(tmp_path / "sub" / "y.npy", np.ones((6, 1), np.float32))
    ds = load(
        {"train": {"type": "npy", "inputs": {"img": "sub/x.npy"}, "targets": {"y": "sub/y.npy"}}},
        tmp_path,
        inputs={"img": TensorType((None, 2, None))},
        outputs={"y": TensorType((None, 1))},
        losses={"y": {"type": "BinaryCrossentropy"}},
    )
    assert isinstance(ds.train.inputs["img"], np.memmap)
    assert ds.train.targets["y"].shape == (6, 1)


def test_csv_by_name_index_and_delimiter(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,a,b,label,note\n1,0.5,2,1,x\n\n2,1.5,3,0,y\n3,2,1,2,z\n")
    ds = load(
        {"train": {"type": "csv", "path": "t.csv", "label": "label", "features": ["b", 1]}},
        tmp_path,
        inputs={"x": TensorType((None, 2))},
    )
    np.testing.assert_array_equal(ds.train.inputs["x"], [[2, 0.5], [3, 1.5], [1, 2]])
    np.testing.assert_array_equal(ds.train.targets["y"], [1, 0, 2])
    (tmp_path / "n.csv").write_text("1;2;0\n3;4;1\n")
    ds = load(
        {"train": {"type": "csv", "path": "n.csv", "label": 2, "header": False, "delimiter": ";"}},
        tmp_path,
        inputs={"x": TensorType((None, 2))},
        outputs={"y": TensorType((None, 1))},
        losses={"y": {"type": "BinaryCrossentropy"}},
    )
    np.testing.assert_array_equal(ds.train.inputs["x"], [[1, 2], [3, 4]])
    assert ds.train.targets["y"].shape == (2, 1)


def test_separate_validation_source(tmp_path: Path) -> None:
    name = npz(tmp_path, **xy())
    ds = load(
        {"train": {"type": "npz", "path": name}, "validation": {"type": "npz", "path": name}},
        tmp_path,
    )
    assert len(ds.validation) == 10


def test_int_input_from_integral_floats(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.array([[1.0], [2.0]]), y=np.array([0, 1]))
    ds = load(
        {"train": {"type": "npz", "path": name}},
        tmp_path,
        inputs={"x": TensorType((None, 1), "int32")},
    )
    assert ds.train.inputs["x"].dtype == np.int32


# --- batching ---------------------------------------------------------------------------


def dataset(n: int) -> ArrayDataset:
    return ArrayDataset({"x": np.arange(n, dtype=np.float32)[:, None]}, {"y": np.arange(n)})


def rows(batch: dict) -> list[int]:
    return batch["targets"]["y"].tolist()


def test_order_is_a_function_of_seed_and_epoch() -> None:
    ds = dataset(50)
    kw = {"shuffle": True, "drop_remainder": False}
    a = [rows(b) for b in ds.epoch_batches(3, 8, seed=1, **kw)]
    assert a == [rows(b) for b in dataset(50).epoch_batches(3, 8, seed=1, **kw)]
    assert a != [rows(b) for b in ds.epoch_batches(4, 8, seed=1, **kw)]
    assert a != [rows(b) for b in ds.epoch_batches(3, 8, seed=2, **kw)]
    assert sorted(sum(a, [])[:50]) == list(range(50))
    plain = [rows(b) for b in ds.epoch_batches(0, 8, seed=1, shuffle=False, drop_remainder=True)]
    assert sum(plain, []) == list(range(48))


@pytest.mark.parametrize("start", [0, 1, 4, 7])
def test_resume_equals_tail_of_epoch(start: int) -> None:
    ds = dataset(53)
    kw = {"shuffle": True, "seed": 5, "drop_remainder": False}
    full = list(ds.epoch_batches(2, 8, **kw))
    tail = list(dataset(53).epoch_batches(2, 8, start=start, **kw))
    assert len(full) == 7 and len(tail) == max(0, 7 - start)
    for got, want in zip(tail, full[start:], strict=True):
        assert rows(got) == rows(want)
        np.testing.assert_array_equal(got["inputs"]["x"], want["inputs"]["x"])
        np.testing.assert_array_equal(got["mask"], want["mask"])


def test_last_batch_padded_and_masked() -> None:
    ds = dataset(10)
    kw = {"shuffle": False, "seed": 0}
    assert ds.num_batches(4, drop_remainder=False) == 3
    last = ds.batch(0, 2, 4, drop_remainder=False, **kw)
    assert rows(last) == [8, 9, 8, 9]
    assert last["mask"].dtype == np.float32 and last["mask"].tolist() == [1, 1, 0, 0]
    assert all(
        b["inputs"]["x"].shape == (4, 1) for b in ds.epoch_batches(0, 4, drop_remainder=False, **kw)
    )
    assert ds.batch(0, 0, 4, drop_remainder=False, **kw)["mask"].tolist() == [1, 1, 1, 1]
    # A batch larger than the whole dataset cycles through it.
    assert rows(dataset(3).batch(0, 0, 8, drop_remainder=False, **kw)) == [0, 1, 2, 0, 1, 2, 0, 1]
    # Masked rows cover every sample exactly once per epoch.
    seen = [
        r
        for b in ds.epoch_batches(1, 4, shuffle=True, seed=3, drop_remainder=False)
        for r, m in zip(rows(b), b["mask"], strict=True)
        if m
    ]
    assert sorted(seen) == list(range(10))


def test_drop_remainder() -> None:
    ds = dataset(10)
    assert ds.num_batches(4, drop_remainder=True) == 2
    batches = list(ds.epoch_batches(0, 4, shuffle=False, seed=0, drop_remainder=True))
    assert len(batches) == 2 and all(b["mask"].all() for b in batches)
    with pytest.raises(IndexError):
        ds.batch(0, 2, 4, shuffle=False, seed=0, drop_remainder=True)


@pytest.mark.parametrize("n", [2, 7, 10, 99, 1797])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.33, 0.5])
def test_split_matches_keras(n: int, fraction: float) -> None:
    slicing = pytest.importorskip("keras.src.trainers.data_adapters.array_slicing")
    k = split_index(n, fraction)
    if k in (0, n):
        with pytest.raises(ValueError):
            slicing.train_validation_split((np.arange(n),), fraction)
        return
    (train,), (val,) = slicing.train_validation_split((np.arange(n),), fraction)
    assert np.asarray(train).tolist() == list(range(k))
    assert np.asarray(val).tolist() == list(range(k, n))


def test_split_last_is_keras_tail_split(tmp_path: Path) -> None:
    name = npz(tmp_path, **xy(10))
    ds = load(
        {"train": {"type": "npz", "path": name}, "validation_split": 0.3, "split": "last"}, tmp_path
    )
    assert ds.validation.targets["y"].tolist() == (np.arange(7, 10) % 3).tolist()
    assert len(ds.train) == 7


def test_split_random_is_a_seeded_disjoint_partition(tmp_path: Path) -> None:
    x = np.arange(100, dtype="float32")[:, None] * np.ones((1, 4), "float32")
    name = npz(tmp_path, x=x, y=np.arange(100) % 3)
    spec = {"train": {"type": "npz", "path": name}, "validation_split": 0.25}
    a, b = load(spec, tmp_path), load(spec, tmp_path)
    val_ids = a.validation.inputs["x"][:, 0].astype(int).tolist()
    train_ids = a.train.inputs["x"][:, 0].astype(int).tolist()
    assert len(val_ids) == 25 and len(train_ids) == 75
    assert sorted(val_ids + train_ids) == list(range(100))
    assert val_ids != list(range(75, 100))  # not the tail
    assert val_ids == b.validation.inputs["x"][:, 0].astype(int).tolist()  # deterministic


# --- data errors ------------------------------------------------------------------------


def test_shape_mismatch(tmp_path: Path) -> None:
    name = npz(tmp_path, images=np.zeros((5, 8, 8)), y=np.zeros(5, int))
    (d,) = errors(
        {"train": {"type": "npz", "path": name, "inputs": {"pixels": "images"}}},
        tmp_path,
        inputs={"pixels": TensorType((None, 64))},
    )
    assert d.path == "data.train.inputs.pixels"
    assert (d.file, d.line, d.col) == ("spec.yaml", 7, 3)
    assert d.message == (
        "data.train (npz 'd.npz'): array 'images' has shape (N, 8, 8) but model input "
        "'pixels' expects (None, 64)"
    )
    assert d.received == "(N, 8, 8)"
    assert d.hint == "Reshape the array, or change model.inputs.pixels.shape to [8, 8]."


def test_none_dims_match_anything(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((5, 7, 4)), y=np.zeros(5, int))
    ds = load(
        {"train": {"type": "npz", "path": name}},
        tmp_path,
        inputs={"x": TensorType((None, None, 4))},
    )
    assert ds.train.inputs["x"].shape == (5, 7, 4)


def test_dtype_errors(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.array([["a"], ["b"]]), t=np.array([[0.5], [1.0]]), y=np.zeros(2))
    diags = errors(
        {"train": {"type": "npz", "path": name, "inputs": {"tok": "t"}}},
        tmp_path,
        inputs={"x": TensorType((None, 1)), "tok": TensorType((None, 1), "int32")},
    )
    by_path = {d.path: d for d in diags}
    # 'x' is found by its default name; with an `inputs:` mapping it is positioned there.
    assert set(by_path) == {"data.train.inputs", "data.train.inputs.tok"}
    text = by_path["data.train.inputs"].message
    assert "array 'x' has dtype <U1, which is not numeric (model input 'x')" in text
    tok = by_path["data.train.inputs.tok"]
    assert "holds non-integer values, but model input 'tok' has dtype int32" in tok.message
    assert tok.received == "0.5 in sample 0"
    assert tok.hint == "Round the data, or declare it float32 in model.inputs.tok.dtype."


def test_sample_counts_differ(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((5, 4)), y=np.zeros(4, int))
    (d,) = errors({"train": {"type": "npz", "path": name}}, tmp_path)
    assert d.path == "data.train"
    assert "different numbers of samples: array 'x' has 5, array 'y' has 4" in d.message


def test_missing_array_lists_available(tmp_path: Path) -> None:
    name = npz(tmp_path, images=np.zeros((5, 4)), labels=np.zeros(5, int))
    diags = errors(
        {"train": {"type": "npz", "path": name, "inputs": {"x": "imagez"}, "targets": {"z": "y"}}},
        tmp_path,
    )
    by_path = {d.path: d for d in diags}
    assert set(by_path) == {"data.train.inputs.x", "data.train.targets.z", "data.train.targets"}
    x = by_path["data.train.inputs.x"]
    assert x.message == "data.train (npz 'd.npz'): no array 'imagez' for model input 'x'"
    assert x.received == "arrays 'images', 'labels'" and x.hint == "Did you mean 'images'?"
    assert "'z' is not a model output" in by_path["data.train.targets.z"].message
    y = by_path["data.train.targets"]  # default lookup for output 'y': an array named 'y'
    assert y.received == "arrays 'images', 'labels'"
    assert "no array 'y' for model output 'y'" in y.message
    assert "targets: {y: <array name>}" in y.hint


def test_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    np.save(tmp_path / "y.npy", np.zeros(3))
    diags = errors(
        {
            "train": {"type": "npz", "path": "nope.npz"},
            "validation": {"type": "npy", "inputs": {"x": "x.npy"}, "targets": {"y": "y.npy"}},
        },
        tmp_path,
    )
    assert [d.path for d in diags] == ["data.train.path", "data.validation.inputs.x"]
    assert "file" in diags[0].message and "nope.npz' was not found" in diags[0].message
    assert "relative to" in diags[0].hint or "Relative paths" in diags[0].hint
    (d,) = errors({"train": {"type": "npz", "path": "bad.npz"}}, tmp_path)
    assert d.path == "data.train.path" and "could not read" in d.message


def test_sparse_label_range(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((4, 4)), y=np.array([0, 1, 5, 2]))
    (d,) = errors({"train": {"type": "npz", "path": name}}, tmp_path)
    assert d.path == "data.train"
    assert d.message == (
        "data.train (npz 'd.npz'): labels in array 'y' range from 0 to 5, but "
        "SparseCategoricalCrossentropy needs class indices in [0, 3); model output 'y' has "
        "3 units"
    )
    assert d.received == "min 0, max 5"
    assert "6 units" in d.hint


@pytest.mark.parametrize(
    ("y", "fragment"),
    [
        (np.array([0.0, 1.5, 2.0, 1.0]), "holds non-integer values"),
        (np.zeros((4, 2), int), "needs one class index per example"),
        (np.array([-1, 0, 1, 2]), "range from -1 to 2"),
    ],
)
def test_sparse_label_errors(tmp_path: Path, y: np.ndarray, fragment: str) -> None:
    (d,) = errors(
        {"train": {"type": "npz", "path": npz(tmp_path, x=np.zeros((4, 4)), y=y)}}, tmp_path
    )
    assert fragment in d.message


def test_sparse_labels_n_by_1_accepted(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((4, 4)), y=np.array([[0.0], [1.0], [2.0], [1.0]]))
    ds = load({"train": {"type": "npz", "path": name}}, tmp_path)
    assert ds.train.targets["y"].shape == (4,) and ds.train.targets["y"].dtype == np.int32


def test_sparse_ignore_class_and_object_loss_spec(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((4, 4)), y=np.array([0, -1, 2, 1]))
    loss = SimpleNamespace(type="SparseCategoricalCrossentropy", ignore_class=-1)
    ds = load({"train": {"type": "npz", "path": name}}, tmp_path, losses={"y": loss})
    assert ds.train.targets["y"].tolist() == [0, -1, 2, 1]
    (d,) = errors({"train": {"type": "npz", "path": name}}, tmp_path)
    assert "range from -1 to 2" in d.message and "ignore_class" in d.hint


def test_categorical_binary_regression_labels(tmp_path: Path) -> None:
    name = npz(tmp_path, x=np.zeros((4, 4)), y=np.array([0, 1, 2, 1]))
    (d,) = errors(
        {"train": {"type": "npz", "path": name}},
        tmp_path,
        losses={"y": {"type": "CategoricalCrossentropy"}},
    )
    assert "array 'y' has shape (N,), which does not fit model output 'y' (None, 3)" in d.message
    assert "One-hot encode" in d.hint
    (d,) = errors(
        {"train": {"type": "npz", "path": name}},
        tmp_path,
        outputs={"y": TensorType((None, 1))},
        losses={"y": "binary_crossentropy"},
    )
    assert "range from 0 to 2, but binary_crossentropy needs values in [0, 1]" in d.message
    (d,) = errors(
        {"train": {"type": "npz", "path": npz(tmp_path, x=np.zeros((4, 4)), y=np.zeros((4, 2)))}},
        tmp_path,
        losses={"y": {"type": "MeanSquaredError"}},
    )
    assert "(N, 2), which does not fit model output 'y' (None, 3) with MeanSquaredError" in (
        d.message
    )


def test_csv_errors(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,species\n1,2,0\n3,oops,1\n4,5,\n")
    diags = errors(
        {"train": {"type": "csv", "path": "t.csv", "label": "species"}},
        tmp_path,
        inputs={"x": TensorType((None, 2))},
    )
    assert [d.path for d in diags] == ["data.train.path", "data.train.label"]
    assert diags[0].message == (
        "data.train (csv 't.csv'): non-numeric value in row 2 (line 3), column 'b'"
    )
    assert diags[0].received == "'oops'"
    assert "empty value in row 3 (line 4), column 'species'" in diags[1].message
    assert "leave the column out" in diags[0].hint and "integers" in diags[1].hint
    diags = errors(
        {"train": {"type": "csv", "path": "t.csv", "label": "specie", "features": ["a", 5]}},
        tmp_path,
    )
    assert [d.path for d in diags] == ["data.train.label", "data.train.features[1]"]
    assert diags[0].hint == "Did you mean 'species'?"
    assert "column index 5 is out of range; the file has 3 columns" in diags[1].message


def test_single_io_sources_need_single_io_model() -> None:
    (d,) = errors(
        {"train": {"type": "sklearn", "name": "iris"}},
        Path("."),
        inputs={"a": TensorType((None, 4)), "b": TensorType((None, 4))},
    )
    assert d.path == "data.train" and "one input and one output" in d.message


def test_split_too_small(tmp_path: Path) -> None:
    name = npz(tmp_path, **xy(1))
    (d,) = errors({"train": {"type": "npz", "path": name}, "validation_split": 0.1}, tmp_path)
    assert d.path == "data.validation_split" and "1 samples" in d.message
    assert d.message.endswith("(it leaves no training samples)")


def test_all_errors_reported_together(tmp_path: Path) -> None:
    bad = npz(tmp_path, x=np.zeros((5, 3)), y=np.array([0, 1, 2, 3, 4]))
    locate = Locator()
    with pytest.raises(DataError) as info:
        load_data(
            DataSpec.model_validate(
                {
                    "train": {"type": "npz", "path": bad},
                    "validation": {"type": "csv", "path": "missing.csv", "label": 0},
                }
            ),
            model_inputs={"x": TensorType((None, 4))},
            model_outputs={"y": TensorType((None, 3))},
            losses={"y": SPARSE},
            seed=0,
            base_dir=tmp_path,
            locate=locate,
        )
    paths = [d.path for d in info.value.diagnostics]
    assert paths == ["data.train", "data.train", "data.validation.path"]
    assert locate.paths == [("data", "train"), ("data", "train"), ("data", "validation", "path")]
    text = str(info.value)
    assert "expects (None, 4)" in text and "[0, 3)" in text and "missing.csv" in text
