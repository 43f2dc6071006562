"""The `text_folder` source against Keras's `text_dataset_from_directory`: file order,
class names and labels against Keras's own `index_directory` (pure Python), texts
against Keras's TensorFlow-free (grain) file loader, and the whole function with
`format="grain"` where grain is installed; plus its errors before step 1."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from modelspec.compiler.load import load
from modelspec.errors import DataError
from modelspec.runtime.data import text_folder, utf8
from modelspec.runtime.data.dataset import load_data
from modelspec.runtime.data.folders import Confinement, encode_labels, index_folder
from modelspec.runtime.data.text_folder import load_texts
from modelspec.schema.data import TextFolderSource
from modelspec.schema.tensors import TensorType

keras = pytest.importorskip("keras")
from keras.src.utils import dataset_utils, text_dataset_utils  # noqa: E402


def make_tree(root):
    """Class folders with what Keras's indexing meets: nested folders, an upper-case
    `.TXT` (kept: Keras lower-cases names), non-.txt files (skipped), a hidden file
    (kept) and a hidden folder (not a class), CRLF and lone-CR line ends, non-ASCII
    text, and an empty class folder."""
    pos, neg = root / "pos", root / "neg"
    for folder in (pos / "sub" / "deeper", neg, root / "empty", root / ".hidden"):
        folder.mkdir(parents=True)
    (pos / "b.txt").write_bytes(b"Great film,\r\nloved it.\r\n")
    (pos / "A.TXT").write_text("Sch\u00f6n \u2014 tr\u00e8s bien \U0001f600", encoding="utf-8")
    (pos / "sub" / "c.txt").write_bytes(b"old\rmac\rline ends")
    (pos / "sub" / "deeper" / "d.txt").write_text("deep " * 30)
    (pos / ".dot.txt").write_text("hidden file")
    (pos / "notes.md").write_text("skipped")
    (neg / "z.txt").write_text("Awful.")
    (neg / "y.txt").write_text("")
    (neg / "x.csv").write_text("a,b")
    (root / ".hidden" / "h.txt").write_text("not a class")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("texts") / "reviews")


def ours(directory, **kw):
    source = TextFolderSource.model_validate(
        {"type": "text_folder", "directory": directory.name, **kw}
    )
    index = index_folder(source, directory.parent, Confinement(None))
    texts, problems = load_texts(index.files, source.max_length)
    assert not problems and not index.problems
    labels = encode_labels(index.labels, source.label_mode, len(index.class_names))
    return index.files, index.class_names, texts, labels


def keras_expected(directory, class_names=None, max_length=None):
    """Keras's own indexing and file loader (neither needs TensorFlow nor grain)."""
    files, labels, names = dataset_utils.index_directory(
        str(directory),
        "inferred",
        formats=(".txt",),
        class_names=class_names,
        shuffle=False,
        verbose=False,
    )
    texts = [text_dataset_utils._path_to_string_content_grain(f, max_length) for f in files]
    return files, names, texts, np.asarray(labels)


@pytest.mark.parametrize(
    "kw",
    [{}, {"max_length": 7}, {"class_names": ["neg", "pos"]}, {"class_names": ["pos", "empty"]}],
)
def test_order_labels_and_texts_match_keras(tree, kw):
    files, names, texts, labels = ours(tree, **kw)
    k_files, k_names, k_texts, k_labels = keras_expected(tree, **kw)
    assert files == k_files and names == k_names
    assert texts.dtype == object and texts.shape == (len(k_texts),)
    assert list(texts) == k_texts and all(type(t) is str for t in texts)
    np.testing.assert_array_equal(labels, k_labels)
    assert labels.dtype == np.int32


def test_what_was_found(tree):
    files, names, texts, labels = ours(tree)
    assert names == ["empty", "neg", "pos"]  # empty class kept, hidden folder not a class
    relative = [os.path.relpath(f, tree) for f in files]
    assert relative == [
        "neg/y.txt",
        "neg/z.txt",
        "pos/.dot.txt",
        "pos/A.TXT",
        "pos/b.txt",
        "pos/sub/c.txt",
        "pos/sub/deeper/d.txt",
    ]
    assert texts[4] == "Great film,\nloved it.\n" and texts[5] == "old\nmac\nline ends"
    assert texts[3].endswith("\U0001f600") and texts[0] == ""
    assert ours(tree, max_length=3)[2][3] == "Sch"  # characters, not bytes


@pytest.mark.parametrize("label_mode", ["categorical", "binary"])
def test_label_modes(tree, label_mode):
    classes = ["pos", "neg"] if label_mode == "binary" else None
    _, names, _, labels = ours(tree, label_mode=label_mode, class_names=classes)
    _, _, _, k_labels = keras_expected(tree, class_names=classes)
    if label_mode == "binary":
        assert labels.dtype == np.float32 and labels.shape == (len(k_labels), 1)
        np.testing.assert_array_equal(labels[:, 0], k_labels)
    else:
        np.testing.assert_array_equal(labels, np.eye(len(names), dtype=np.float32)[k_labels])


def test_matches_keras_grain_loader(tree):
    pytest.importorskip("grain")  # Keras's TensorFlow-free text_dataset_from_directory
    for kw in ({}, {"max_length": 5, "label_mode": "categorical"}):
        ds = keras.utils.text_dataset_from_directory(
            str(tree), format="grain", shuffle=False, batch_size=None, verbose=False, **kw
        )
        pairs = list(ds)
        _, names, texts, labels = ours(tree, **kw)
        assert names == ds.class_names
        assert list(texts) == [t for t, _ in pairs]
        np.testing.assert_array_equal(labels, np.stack([np.asarray(y) for _, y in pairs]))


# --- through load_data, positioned on a real spec -----------------------------------------

SPEC = """\
modelspec: 1
name: texts
data:
  train:
    type: text_folder
    directory: {directory}
{extra}model:
  inputs:
    text: {{shape: [1]}}
  layers:
    - {{type: Dense, units: 3}}
loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
"""


def read(folder, directory="reviews", extra="", shape=(None,), **data):
    """load_data on the spec's data section with a `string` input (the model part only
    places the errors: the text layers that would read the input are not needed here)."""
    spec_file = folder / "spec.yaml"
    spec_file.write_text(SPEC.format(directory=directory, extra=extra))
    spec = load(spec_file, [])
    data_spec = spec.data.model_copy(update=data) if data else spec.data
    return load_data(
        data_spec,
        model_inputs={"text": TensorType(shape, "string")},
        model_outputs={"dense": TensorType((None, 3))},
        losses={"dense": {"type": "SparseCategoricalCrossentropy"}},
        seed=0,
        base_dir=spec.base_dir,
        locate=spec.locate,
    )


def messages(folder, **kw) -> list[str]:
    with pytest.raises(DataError) as info:
        read(folder, **kw)
    return [d.format() for d in info.value.diagnostics]


def copy(tree, tmp_path, *, empty: bool = False):
    """The tree as training data: without its empty class folder (an error, see
    `test_empty_dataset_empty_class_and_outside`) unless `empty`."""
    import shutil

    shutil.copytree(tree, tmp_path / "reviews")
    if not empty:
        (tmp_path / "reviews" / "empty").rmdir()
    return tmp_path / "reviews"


def test_load_data_feeds_a_string_input(tree, tmp_path):
    copy(tree, tmp_path)
    sets = read(tmp_path, validation_split=0.25, split="last")
    _, _, k_texts, k_labels = keras_expected(tmp_path / "reviews")
    x = np.concatenate([sets.train.inputs["text"], sets.validation.inputs["text"]])
    y = np.concatenate([sets.train.targets["dense"], sets.validation.targets["dense"]])
    assert x.dtype == object and list(x) == k_texts
    np.testing.assert_array_equal(y, k_labels)
    assert len(sets.validation) == 2
    batch = sets.train.batch(0, 0, 4, shuffle=True, seed=1, drop_remainder=False)
    assert batch["inputs"]["text"].dtype == object and batch["inputs"]["text"].shape == (4,)
    column = read(tmp_path, shape=(None, 1)).train.inputs["text"]  # an input of shape [1]
    assert column.shape == (7, 1) and column[4, 0] == "Great film,\nloved it.\n"


def test_not_utf8_names_file_offset_and_line(tree, tmp_path):
    reviews = copy(tree, tmp_path)
    (reviews / "neg" / "latin1.txt").write_bytes("ok\nna\u00efve".encode("latin-1"))
    (reviews / "pos" / "cp1252.txt").write_bytes(b"\x93quoted\x94")
    got = messages(tmp_path)
    head = (
        f"{tmp_path / 'spec.yaml'}:6:16: data.train.directory: data.train (text_folder 'reviews'): "
    )
    assert got[0].startswith(head + f"{str(reviews / 'neg' / 'latin1.txt')!r} is not UTF-8 text")
    assert "byte 0xef at offset 5 (line 2)" in got[0] and "iconv" in got[0]
    assert "cp1252.txt" in got[1] and "byte 0x93 at offset 0 (line 1)" in got[1]
    assert len(got) == 2  # every bad file, together


def test_empty_dataset_empty_class_and_outside(tree, tmp_path, capsys):
    (tmp_path / "reviews" / "a").mkdir(parents=True)
    (tmp_path / "reviews" / "a" / "note.md").write_text("x")
    (message,) = messages(tmp_path)
    assert message.startswith(f"{tmp_path / 'spec.yaml'}:6:16: data.train.directory: ")
    assert "no .txt files found in 1 class folder(s)" in message
    reviews = copy(tree, tmp_path / "t", empty=True)
    (message,) = messages(tmp_path / "t", directory=str(reviews))  # an empty class: refused
    assert f"class folder {str(reviews / 'empty')!r} holds no .txt files" in message
    read(tmp_path / "t", directory=str(reviews), extra="    class_names: [empty, neg, pos]\n")
    assert "class folder 'empty' holds no .txt files" in capsys.readouterr().err  # listed: kept
    inside = tmp_path / "project"
    (inside / ".git").mkdir(parents=True)
    (message,) = messages(inside, directory="../t/reviews")
    assert "is outside" in message and "--allow-outside" in message


@pytest.mark.parametrize(
    "extra, field, words",
    [
        ("    class_names: [pos, pso]\n", "class_names", "class 'pso' has no subfolder"),
        ("    label_mode: binary\n", "label_mode", "needs exactly 2 classes, found 3"),
    ],
)
def test_read_errors_positioned(tree, tmp_path, extra, field, words):
    copy(tree, tmp_path, empty="binary" in extra)  # three classes: "found 3"
    (message,) = messages(tmp_path, extra=extra)
    line = 6 + len(extra.splitlines())
    col = extra.splitlines()[-1].index(": ") + 3
    assert message.startswith(f"{tmp_path / 'spec.yaml'}:{line}:{col}: data.train.{field}: ")
    assert words in message


def test_byte_cap(tree, tmp_path, monkeypatch):
    copy(tree, tmp_path)
    monkeypatch.setattr(text_folder, "MAX_TEXT_BYTES", 100)
    (message,) = messages(tmp_path)
    assert "data.train.directory" in message and "over the 0 GiB" in message
    with pytest.raises(utf8.TextFileError, match="z.txt' holds 0 MiB, over the 0 MiB"):
        utf8.read_utf8(tmp_path / "reviews" / "neg" / "z.txt", limit=5)  # one file's cap


@pytest.mark.parametrize(
    "extra, field, words",
    [
        ("    max_length: 0\n", "max_length", "must be > 0"),
        ("    class_names: [a, a]\n", "class_names", "repeated: ['a']"),
        ("    labels: [0, 1]\n", "labels", "'inferred'"),
    ],
)
def test_schema_errors_positioned(tmp_path, extra, field, words):
    from modelspec.errors import SpecError

    (tmp_path / "spec.yaml").write_text(SPEC.format(directory="reviews", extra=extra))
    with pytest.raises(SpecError) as info:
        load(tmp_path / "spec.yaml", [])
    (diag,) = info.value.diagnostics
    line, col = 6 + len(extra.splitlines()), extra.index(": ") + 3
    assert diag.format().startswith(f"{tmp_path / 'spec.yaml'}:{line}:{col}: data.train.{field}: ")
    assert words in diag.format()


def test_class_names_written_for_predict(tree, tmp_path):
    from types import SimpleNamespace

    from modelspec.runtime.data.class_names import write_class_names

    copy(tree, tmp_path, empty=True)  # class names come from the folders, empty or not
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC.format(directory="reviews", extra="    label_mode: categorical\n"))
    spec = load(spec_file, [])
    stand_in = SimpleNamespace(
        data=spec.data, base_dir=spec.base_dir, graph=spec.graph, loss=spec.loss,
        output_type=lambda name: TensorType((None, 3)),
    )  # fmt: skip
    write_class_names(tmp_path, stand_in)
    record = json.loads((tmp_path / "class_names.json").read_text())
    assert record == {
        "class_names": ["empty", "neg", "pos"],
        "label_mode": "categorical",
        "output": "dense",
        "from_logits": True,
    }
