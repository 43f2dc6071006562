"""CSV and JSONL columns mapped to model inputs and outputs by name: text columns as
object arrays of `str`, numeric columns stacked, class-name targets mapped to indices
(the validation data with the training data's classes), the class names written for
`predict`, the string checks of `check_arrays`, and the bad-data errors before step 1
(positioned on the spec, naming the file and line; exit code 2 from `train`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from modelspec.cli import app
from modelspec.compiler.load import load
from modelspec.errors import DataError, SpecError
from modelspec.runtime.data.checks import check_arrays
from modelspec.runtime.data.class_names import prediction_lines, write_class_names
from modelspec.runtime.data.dataset import load_data
from modelspec.runtime.data.raw import RawArray, RawSource, Reporter
from modelspec.schema.data import DataSpec
from modelspec.schema.tensors import TensorType

SPARSE = {"type": "SparseCategoricalCrossentropy", "from_logits": True}
TEXT = TensorType((None,), "string")
CSV = (
    "id,review,stars,helpful,sentiment\n"
    '1,"Great, really great",5,0.5,pos\n'
    '2,"Two\nlines",1,0.25,neg\n'
    "\n"
    "3,meh,3,0,neutral\n"
    '4,"He said ""no""",2,1,neg\n'
)


def located(path: tuple) -> tuple[str, int, int]:
    return ("spec.yaml", 1, 1)


def read(data: dict, base: Path, inputs: dict, outputs: dict | None = None, losses=None):
    outputs = outputs or {"y": TensorType((None, 3))}
    return load_data(
        DataSpec.model_validate(data),
        model_inputs=inputs,
        model_outputs=outputs,
        losses={name: SPARSE for name in outputs} if losses is None else losses,
        seed=0,
        base_dir=base,
        locate=located,
    )


def diagnostics(*args, **kw) -> list:
    with pytest.raises(DataError) as info:
        read(*args, **kw)
    return info.value.diagnostics


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    (tmp_path / "r.csv").write_text(CSV)
    return tmp_path


def test_csv_text_numeric_and_class_columns(reviews: Path) -> None:
    sets = read(
        {
            "train": {
                "type": "csv",
                "path": "r.csv",
                "inputs": {"text": "review", "nums": ["stars", 3]},
                "targets": {"y": "sentiment"},
            },
            "shuffle": False,
        },
        reviews,
        {"text": TEXT, "nums": TensorType((None, 2))},
    )
    text = sets.train.inputs["text"]
    assert text.dtype == object and text.shape == (4,)
    assert list(text) == ["Great, really great", "Two\nlines", "meh", 'He said "no"']
    np.testing.assert_array_equal(
        sets.train.inputs["nums"], np.array([[5, 0.5], [1, 0.25], [3, 0], [2, 1]], np.float32)
    )
    # sorted distinct values: neg=0, neutral=1, pos=2
    np.testing.assert_array_equal(sets.train.targets["y"], [2, 0, 1, 0])
    assert sets.train.targets["y"].dtype == np.int32


def test_csv_shapes_explicit_classes_and_numeric_target(reviews: Path) -> None:
    sets = read(
        {
            "train": {
                "type": "csv",
                "path": "r.csv",
                "inputs": {"text": "review", "stars": "stars"},
                "targets": {
                    "y": {"column": "sentiment", "classes": ["pos", "neutral", "neg"]},
                    "score": "helpful",
                },
            }
        },
        reviews,
        {"text": TensorType((None, 1), "string"), "stars": TensorType((None, 1))},
        {"y": TensorType((None, 3)), "score": TensorType((None, 1))},
        losses={"y": SPARSE, "score": {"type": "MeanSquaredError"}},
    )
    assert sets.train.inputs["text"].shape == (4, 1) and sets.train.inputs["stars"].shape == (4, 1)
    np.testing.assert_array_equal(sets.train.targets["y"], [0, 2, 1, 2])
    np.testing.assert_array_equal(sets.train.targets["score"][:, 0], [0.5, 0.25, 0, 1])


def test_validation_uses_training_classes(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("t,label\na,cat\nb,dog\nc,bird\n")
    (tmp_path / "val.csv").write_text("t,label\nd,dog\ne,dog\n")
    data = {
        "train": {"type": "csv", "path": "train.csv", "inputs": {"x": "t"}, "targets": {"y": "label"}},
        "validation": {"type": "csv", "path": "val.csv", "inputs": {"x": "t"}, "targets": {"y": "label"}},
    }  # fmt: skip
    sets = read(data, tmp_path, {"x": TEXT})
    np.testing.assert_array_equal(sets.train.targets["y"], [1, 2, 0])  # bird, cat, dog
    np.testing.assert_array_equal(sets.validation.targets["y"], [2, 2])  # not [0, 0]
    (tmp_path / "val.csv").write_text("t,label\nd,dog\ne,cow\n")
    (d,) = diagnostics(data, tmp_path, {"x": TEXT})
    assert d.path == "data.validation.targets.y"
    assert d.message == (
        "data.validation (csv 'val.csv'): row 2 (line 3): column 'label' holds 'cow', which "
        "is not one of the 3 classes (from the training data's column)"
    )
    assert "['bird', 'cat', 'dog']" in d.hint


def test_jsonl_fields(tmp_path: Path) -> None:
    lines = [
        {"text": "good \u2028 one", "vec": [1, 2], "a": 1, "b": 2.5, "label": "yes", "r": 0.5},
        {"text": "bad", "vec": [3, 4], "a": 3, "b": 4, "label": "no", "r": 1},
    ]
    (tmp_path / "d.jsonl").write_text(
        "\n".join(json.dumps(obj, ensure_ascii=False) for obj in lines) + "\n\n"
    )
    sets = read(
        {
            "train": {
                "type": "jsonl",
                "path": "d.jsonl",
                "inputs": {"text": "text", "vec": "vec", "ab": ["a", "b"]},
                "targets": {"y": "label", "r": "r"},
            },
            "shuffle": False,
        },
        tmp_path,
        {"text": TEXT, "vec": TensorType((None, 2)), "ab": TensorType((None, 2))},
        {"y": TensorType((None, 2)), "r": TensorType((None, 1))},
        losses={"y": SPARSE, "r": {"type": "MeanSquaredError"}},
    )
    assert list(sets.train.inputs["text"]) == ["good \u2028 one", "bad"]
    np.testing.assert_array_equal(sets.train.inputs["vec"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(sets.train.inputs["ab"], [[1, 2.5], [3, 4]])
    np.testing.assert_array_equal(sets.train.targets["y"], [1, 0])  # no=0, yes=1
    np.testing.assert_array_equal(sets.train.targets["r"][:, 0], [0.5, 1])


def jsonl_errors(tmp_path: Path, text: str, inputs=None, field="text") -> list:
    (tmp_path / "d.jsonl").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    data = {
        "train": {"type": "jsonl", "path": "d.jsonl", "inputs": {"x": field}, "targets": {"y": "y"}}
    }
    return diagnostics(data, tmp_path, inputs or {"x": TEXT})


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    file = repr(str(tmp_path / "d.jsonl"))
    d1, d2 = jsonl_errors(tmp_path, '{"text": "a", "y": "p"}\n{"text": "b" "y": 1}\n[1, 2]\n')
    assert d1.path == d2.path == "data.train.path"
    assert d1.message == (
        f"data.train (jsonl 'd.jsonl'): {file} line 2 is not valid JSON: Expecting ',' "
        "delimiter (column 14)"
    )
    assert d2.message.endswith(f"{file} line 3 holds a JSON array, not an object")
    (d,) = jsonl_errors(tmp_path, '{"text": "a", "y": "p"}\n{"txt": "b", "y": "q"}\n')
    assert d.path == "data.train.inputs.x"
    assert d.message == ("data.train (jsonl 'd.jsonl'): line 2 of 'd.jsonl' has no field 'text'")
    assert d.hint == "Did you mean 'txt'?"
    (d,) = jsonl_errors(tmp_path, "\n  \n")
    assert d.message.endswith(f"{file} has no data lines")
    (d,) = jsonl_errors(tmp_path, b'{"text": "caf\xe9", "y": "p"}\n')
    assert f"{file} is not UTF-8 text: cannot decode byte 0xe9 at offset 13 (line 1)" in d.message


def test_string_and_numeric_inputs_refuse_the_other(tmp_path: Path) -> None:
    # numbers for a string input, and text for a numeric input, named with the field
    (d,) = jsonl_errors(tmp_path, '{"text": "a", "y": "p"}\n{"text": 7, "y": "q"}\n')
    assert d.path == "data.train.inputs.x"
    assert d.message == (
        "data.train (jsonl 'd.jsonl'): field 'text' holds 7 in row 2 (line 2), but model "
        "input 'x' has dtype string and takes text only"
    )
    (d,) = jsonl_errors(
        tmp_path, '{"text": "a", "y": "p"}\n{"text": "b", "y": "q"}\n', {"x": TensorType((None,))}
    )
    assert d.message == (
        "data.train (jsonl 'd.jsonl'): field 'text' has dtype object, which is not numeric "
        "(model input 'x'): it holds text ('a' in row 1 (line 1))"
    )
    assert "dtype: string" in d.hint
    (tmp_path / "r.csv").write_text(CSV)
    (d,) = diagnostics(
        {"train": {"type": "csv", "path": "r.csv", "inputs": {"x": "review"}, "targets": {"y": "stars"}}},
        tmp_path,
        {"x": TensorType((None,))},
        {"y": TensorType((None, 6))},
    )  # fmt: skip
    assert d.path == "data.train.inputs.x"
    assert d.message == (
        "data.train (csv 'r.csv'): non-numeric value in row 1 (line 2), column 'review'"
    )


def test_check_arrays_string_inputs() -> None:
    def check(array, lines=None):
        raw = RawSource("data.train (npz 'a.npz')", ("data", "train"))
        raw.inputs["x"] = RawArray(array, "array 'x'", ("data", "train"), lines=lines)
        rep = Reporter(located)
        out = check_arrays(raw, {"x": TEXT}, {}, {}, rep)
        return out, [d.message for d in rep.diagnostics]

    (inputs, _), _ = check(np.array(["a", "bc"]))  # NumPy `U` text -> object array of str
    assert inputs["x"].dtype == object and list(inputs["x"]) == ["a", "bc"]
    assert all(type(v) is str for v in inputs["x"])
    _, (message,) = check(np.array(["a", b"raw", "c"], dtype=object), lines=[2, 5, 9])
    assert message.endswith("array 'x' holds b'raw' in row 2 (line 5), but model input 'x' "
                            "has dtype string and takes text only")  # fmt: skip
    _, (message,) = check(np.arange(3.0))
    assert "holds dtype float64, but model input 'x' has dtype string" in message
    _, (message,) = check(np.array([["a", "b"]], dtype=object))
    assert "has shape (N, 2) but model input 'x' expects (None,)" in message


def test_csv_not_utf8_and_bad_header(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_bytes(b"text,label\nok,pos\n\xff\xfe,neg\n")
    data = {"train": {"type": "csv", "path": "r.csv", "inputs": {"x": "text"}, "targets": {"y": "label"}}}  # fmt: skip
    (d,) = diagnostics(data, tmp_path, {"x": TEXT})
    assert d.path == "data.train.path"
    assert d.message == (
        f"data.train (csv 'r.csv'): {str(tmp_path / 'r.csv')!r} is not UTF-8 text: cannot "
        "decode byte 0xff at offset 18 (line 3): invalid start byte"
    )
    (tmp_path / "r.csv").write_text("text,label\na,b,c\n")
    (d,) = diagnostics(data, tmp_path, {"x": TEXT})
    assert "row 1 (line 2) of" in d.message and "has 3 columns, expected 2" in d.message
    (tmp_path / "r.csv").write_text("text,label\n")
    (d,) = diagnostics(data, tmp_path, {"x": TEXT})
    assert d.message.endswith("r.csv' has no data rows")


def test_mapping_names_model_inputs_and_outputs(reviews: Path) -> None:
    data = {
        "train": {
            "type": "csv",
            "path": "r.csv",
            "inputs": {"txt": "review"},
            "targets": {"label": "sentiment"},
        }
    }
    paths = [d.path for d in diagnostics(data, reviews, {"text": TEXT})]
    assert paths == [
        "data.train.inputs.txt",
        "data.train.inputs",
        "data.train.targets.label",
        "data.train.targets",
    ]
    data["train"]["inputs"] = {"text": ["review", "stars"]}
    (d,) = diagnostics(
        {**data, "train": {**data["train"], "targets": {"y": "sentiment"}}}, reviews, {"text": TEXT}
    )
    assert "has dtype string and takes one text column, but 2 are given" in d.message  # fmt: skip


@pytest.mark.parametrize(
    "train, words",
    [
        (
            {"label": "y", "inputs": {"x": "a"}},
            "`inputs` cannot be combined with `label`",
        ),
        (
            {"features": ["a"], "label": 0, "targets": {"y": "b"}},
            "`targets` cannot be combined with `label`",
        ),
        ({}, "needs `label` (and optionally `features`), or `inputs` and `targets`"),
        ({"header": False, "inputs": {"x": "a"}, "targets": {"y": 1}}, "column name 'a' used"),
    ],
)
def test_csv_schema(train: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        DataSpec.model_validate({"train": {"type": "csv", "path": "a.csv", **train}})


def test_jsonl_schema() -> None:
    with pytest.raises(ValidationError, match="JSON fields are named"):
        DataSpec.model_validate(
            {"train": {"type": "jsonl", "path": "a", "inputs": {"x": "a"}, "targets": {"y": {"column": 0}}}}
        )  # fmt: skip
    with pytest.raises(ValidationError, match="repeated"):
        DataSpec.model_validate(
            {"train": {"type": "jsonl", "path": "a", "inputs": {"x": "a"}, "targets": {"y": {"column": "c", "classes": ["a", "a"]}}}}
        )  # fmt: skip


def test_class_names_written_for_predict(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(CSV)
    data = DataSpec.model_validate(
        {"train": {"type": "csv", "path": "r.csv", "inputs": {"x": "review"},
                   "targets": {"y": "sentiment", "z": {"column": "stars", "classes": ["1", "5"]}, "w": "helpful"}}}
    )  # fmt: skip
    types = {"y": TensorType((None, 3)), "z": TensorType((None, 1)), "w": TensorType((None, 1))}
    spec = SimpleNamespace(
        data=data,
        base_dir=tmp_path,
        graph=SimpleNamespace(outputs=("y", "z", "w")),
        loss={"y": SimpleNamespace(from_logits=True), "z": None, "w": None},
        output_type=types.get,
    )
    write_class_names(tmp_path, spec)
    record = json.loads((tmp_path / "class_names.json").read_text())
    assert record["class_names"] == ["neg", "neutral", "pos"] and record["output"] == "y"
    assert record["label_mode"] == "int" and record["from_logits"]
    assert record["outputs"]["z"]["class_names"] == ["1", "5"]
    assert record["outputs"]["z"]["label_mode"] == "binary"  # two classes, one unit
    assert "w" not in record["outputs"]  # numeric target: no class names
    lines = prediction_lines(tmp_path, {"y": np.array([[0.0, 0.0, 5.0]])}, ["first"])
    assert lines == ["first: pos (0.9867)"]


# --- through the CLI: exit code 2, positioned, no traceback --------------------------------

SPEC = """\
modelspec: 1
name: cols
data:
  train:
    type: csv
    path: r.csv
    inputs:
      x: [stars, helpfull]
    targets:
      y: sentiment
model:
  inputs:
    x: {shape: [2]}
  layers:
    - {type: Dense, units: 3}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
"""


def test_train_cli_missing_column_exit_2(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(CSV)
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "spec.yaml"), "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert (
        f"{tmp_path / 'spec.yaml'}:8:18: data.train.inputs.x[1]: data.train (csv 'r.csv'): "
        "no column named 'helpfull'"
    ) in result.output
    assert "Did you mean 'helpful'?" in result.output
    assert not (tmp_path / "run" / "checkpoints").exists()  # before step 1


def test_load_errors_are_positioned_on_the_spec(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(CSV)
    (tmp_path / "spec.yaml").write_text(SPEC.replace("helpfull", "helpful"))
    spec = load(tmp_path / "spec.yaml", [])
    with pytest.raises(SpecError) as info:
        load_data(
            spec.data,
            model_inputs={"x": TensorType((None, 2))},
            model_outputs={"dense": TensorType((None, 3))},
            losses={"dense": SPARSE},
            seed=0,
            base_dir=spec.base_dir,
            locate=spec.locate,
        )
    unknown, missing = [d.format() for d in info.value.diagnostics]  # reported together
    spec_file = tmp_path / "spec.yaml"
    assert unknown.startswith(f"{spec_file}:10:10: data.train.targets.y: ")
    assert "'y' is not a model output" in unknown and "Did you mean" not in unknown
    assert missing.startswith(f"{spec_file}:10:7: data.train.targets: ")
    assert "no column given for model output 'dense'" in missing
