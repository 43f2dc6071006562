"""The `tokens` data source: next-token windows of one token file (.npy or raw .bin),
read lazily, split and batched like any source, and checked before step 1 with errors
positioned at the spec field (file:line:col) naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from modelspec.compiler.load import load
from modelspec.errors import DataError, SpecError
from modelspec.runtime.data import token_source
from modelspec.runtime.data.token_source import TokenWindows
from modelspec.runtime.session import load_datasets
from modelspec.schema.data import DataSpec

SPEC = """\
name: lm
model:
  inputs:
    tokens: {{shape: [{length}], dtype: int32}}
  layers:
    - {{name: embed, type: Embedding, input_dim: {vocab}, output_dim: 4}}
    - {{name: logits, type: Dense, units: {vocab}}}
data:
  train:
    type: tokens
    path: {path}
    sequence_length: {seq}{extra}
  {split}
  batch_size: 4
loss: {{type: SparseCategoricalCrossentropy, from_logits: true}}
"""


def spec_file(
    tmp_path: Path,
    path: str,
    *,
    length: int = 8,
    seq: int | None = None,
    vocab: int = 100,
    extra: str = "",
    split: str = "shuffle: true",
) -> Path:
    text = SPEC.format(
        length=length, seq=seq or length, vocab=vocab, path=path, extra=extra, split=split
    )
    file = tmp_path / "spec.yaml"
    file.write_text(text)
    return file


def datasets(tmp_path: Path, path: str, **kw):
    return load_datasets(load(spec_file(tmp_path, path, **kw)))


def diagnostics(tmp_path: Path, path: str, **kw) -> list:
    with pytest.raises(SpecError) as info:
        datasets(tmp_path, path, **kw)
    return info.value.diagnostics


def save(tmp_path: Path, tokens: np.ndarray, name: str = "tokens.npy") -> str:
    if name.endswith(".npy"):
        np.save(tmp_path / name, tokens)
    else:
        tokens.tofile(tmp_path / name)
    return name


# --- windows ------------------------------------------------------------------------------


@pytest.mark.parametrize(("stride", "count"), [(None, 12), (8, 12), (3, 31), (11, 9)])
def test_windows_are_shifted_next_token_pairs(tmp_path, stride, count):
    tokens = np.arange(100, dtype=np.uint16)  # token i has id i: rows show their offsets
    extra = "" if stride is None else f"\n    stride: {stride}"
    data = datasets(tmp_path, save(tmp_path, tokens), extra=extra).train
    x, y = np.asarray(data.inputs["tokens"]), np.asarray(data.targets["logits"])
    step = stride or 8
    assert x.shape == y.shape == (count, 8) == (len(data), 8)
    assert x.dtype == np.int32 and y.dtype == np.int32
    starts = np.arange(count) * step
    np.testing.assert_array_equal(x, starts[:, None] + np.arange(8))
    np.testing.assert_array_equal(y, x + 1)
    assert starts[-1] + 8 + 1 <= 100 < starts[-1] + step + 8 + 1  # the last window that fits


def test_raw_bin_file_of_uint16_tokens_nanogpt_style(tmp_path):
    tokens = (np.arange(50) * 1000 % 60000).astype(np.uint16)
    data = datasets(tmp_path, save(tmp_path, tokens, "train.bin"), vocab=60000).train
    np.testing.assert_array_equal(np.asarray(data.inputs["tokens"])[1], tokens[8:16])
    wide = tokens.astype(np.int32)
    wide.tofile(tmp_path / "wide.bin")
    extra = "\n    dtype: int32"
    data = datasets(tmp_path, "wide.bin", vocab=60000, extra=extra).train
    np.testing.assert_array_equal(np.asarray(data.targets["logits"])[2], wide[17:25])


@pytest.mark.parametrize("split", ["random", "last"])
def test_validation_split_holds_out_whole_windows(tmp_path, split):
    tokens = np.arange(801, dtype=np.int32)  # 100 windows, told apart by their first id
    data = datasets(
        tmp_path,
        save(tmp_path, tokens),
        vocab=1000,
        split=f"validation_split: 0.25\n  split: {split}",
    )
    train, val = data.train, data.validation
    assert (len(train), len(val)) == (75, 25)
    firsts = [np.asarray(ds.inputs["tokens"])[:, 0] for ds in (train, val)]
    assert sorted(np.concatenate(firsts).tolist()) == list(range(0, 800, 8))
    if split == "last":
        assert firsts[1].tolist() == list(range(600, 800, 8))
    for ds in (train, val):  # still lazy after the split, and targets still follow inputs
        assert isinstance(ds.inputs["tokens"], TokenWindows)
        x, y = np.asarray(ds.inputs["tokens"]), np.asarray(ds.targets["logits"])
        np.testing.assert_array_equal(x + 1, y)


class Spy:
    """A token array that records which offsets are read, and how many at once."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens, self.read, self.largest, self.total = tokens, set(), 0, 0
        self.dtype = tokens.dtype

    def __getitem__(self, index):
        got = self.tokens[index]
        offsets = np.arange(len(self.tokens))[index]
        self.read.update(np.asarray(offsets).reshape(-1).tolist())
        self.largest = max(self.largest, np.asarray(offsets).size)
        self.total += np.asarray(offsets).size
        return got


def test_batches_read_only_their_windows(tmp_path):
    tokens = np.arange(4001, dtype=np.int32) % 100
    data = datasets(tmp_path, save(tmp_path, tokens)).train  # 500 windows
    x, y = data.inputs["tokens"], data.targets["logits"]
    assert isinstance(x, TokenWindows) and isinstance(y, TokenWindows)
    assert isinstance(x.tokens, np.memmap)  # mapped, not loaded
    x.tokens, y.tokens = Spy(x.tokens), Spy(y.tokens)
    batch = data.batch(0, 3, 4, shuffle=True, seed=1, drop_remainder=False)
    rows = data.order(0, shuffle=True, seed=1)[12:16]
    want_x = {int(r) * 8 + k for r in rows for k in range(8)}
    assert x.tokens.read == want_x and y.tokens.read == {o + 1 for o in want_x}
    np.testing.assert_array_equal(batch["inputs"]["tokens"][:, 0], rows * 8 % 100)
    out = np.empty((2, 8), np.int32)
    x.tokens.read.clear()
    x.read_into(np.array([5, 9]), out)  # the prefetching workers' path
    assert x.tokens.read == {*range(40, 48), *range(72, 80)}
    np.testing.assert_array_equal(out, np.asarray(x[np.array([5, 9])]))


def test_checks_scan_the_file_in_bounded_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(token_source, "CHUNK_TOKENS", 64)
    tokens = np.arange(1001, dtype=np.int32) % 100
    windows = TokenWindows(Spy(tokens), np.arange(125) * 8, 8)
    assert windows.value_range() == (0, 99)
    assert windows.tokens.largest == 64 and windows.tokens.read == set(range(1000))
    spy = Spy(tokens)  # a source's input and target windows share the chunks' ranges
    inputs = TokenWindows(spy, np.arange(125) * 8, 8)
    targets = TokenWindows(spy, np.arange(125) * 8 + 1, 8, stats=inputs.stats)
    assert inputs.value_range() == targets.value_range() == (0, 99)
    assert spy.total < 1000 + 2 * 64  # the file is read about once, not twice
    sparse = TokenWindows(Spy(tokens), np.array([0, 100, 500]), 8)  # gaps: the windows only
    assert sparse.value_range(exclude=0) == (1, 507 % 100)
    assert sparse.tokens.read == {*range(8), *range(100, 108), *range(500, 508)}
    assert sparse.first_outside(0, 5) == "token 5 of the file (counting from 0)"
    assert inputs.first_outside(0, 99) == "token 99 of the file (counting from 0)"
    assert inputs.first_outside(0, 100) is None


# --- errors before step 1, positioned ----------------------------------------------------------


def only(diags: list):
    assert len(diags) == 1, [d.format() for d in diags]
    return diags[0]


def test_token_id_outside_the_embedding_vocabulary(tmp_path):
    tokens = np.arange(300, dtype=np.uint16) % 50
    tokens[123] = 77
    d, labels = diagnostics(tmp_path, save(tmp_path, tokens), vocab=60)
    assert "labels in file 'tokens.npy' range from 0 to 77" in labels.message  # the targets
    assert (d.path, d.line, d.col) == ("data.train.path", 11, 11)
    assert d.file == str(tmp_path / "spec.yaml")
    assert "tokens.npy" in d.message and "Embedding 'embed' (input_dim 60)" in d.message
    assert "token 123 of the file" in d.message and "ids from 0 to 77" in d.message
    assert "input_dim to at least 78" in d.hint
    assert f"{tmp_path / 'spec.yaml'}:11:11: data.train.path:" in d.format()


def test_negative_ids_are_refused_from_any_source(tmp_path):
    tokens = np.arange(100, dtype=np.int64) % 10
    tokens[40] = -3
    d, _ = diagnostics(tmp_path, save(tmp_path, tokens), vocab=60)
    assert "ids from -3 to 9" in d.message and "token 40" in d.message
    np.savez(tmp_path / "d.npz", x=np.array([[1, 2], [3, 99]]), y=np.array([[1, 2], [3, 4]]))
    (tmp_path / "npz.yaml").write_text(
        "model:\n  inputs: {x: {shape: [2], dtype: int32}}\n  layers:\n"
        "    - {type: Embedding, input_dim: 50, output_dim: 3}\n"
        "    - {type: Dense, units: 50}\n"
        "data: {train: {type: npz, path: d.npz}}\n"
        "loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n"
    )
    with pytest.raises(SpecError) as info:
        load_datasets(load(tmp_path / "npz.yaml"))
    d = only(info.value.diagnostics)
    assert "Embedding 'embedding' (input_dim 50)" in d.message and "sample 1" in d.message


def test_float_token_file_is_refused(tmp_path):
    d = only(diagnostics(tmp_path, save(tmp_path, np.linspace(0, 9, 100, dtype=np.float32))))
    assert (d.path, d.line) == ("data.train.path", 11)
    assert "tokens.npy" in d.message and "float32 values; token ids must be integers" in d.message


def test_file_shorter_than_one_window_and_its_target(tmp_path):
    d = only(diagnostics(tmp_path, save(tmp_path, np.arange(8, dtype=np.int32))))
    assert (d.path, d.line, d.col) == ("data.train.path", 11, 11)
    assert "holds 8 tokens, fewer than sequence_length + 1 = 9" in d.message
    assert "tokens.npy" in d.message
    datasets(tmp_path, save(tmp_path, np.arange(9, dtype=np.int32)))  # exactly one window


def test_sequence_length_must_match_the_model_input(tmp_path):
    d = only(diagnostics(tmp_path, save(tmp_path, np.arange(100, dtype=np.int32)), seq=16))
    assert (d.path, d.line, d.col) == ("data.train.sequence_length", 12, 22)
    assert "sequence_length 16 differs from the length of model input 'tokens', 8" in d.message


def open_bin(folder: Path):
    """`t.bin` opened for writing (np.save would append `.npy` to the name)."""
    return (folder / "t.bin").open("wb")


@pytest.mark.parametrize(
    ("write", "extra", "message"),
    [
        (lambda p: (p / "t.bin").write_bytes(b"\x01\x02\x03"), "", "holds 3 bytes, not a whole"),
        (lambda p: np.save(open_bin(p), np.zeros((4, 30), np.int32)), "", "shape (4, 30)"),
        (lambda p: np.savez(open_bin(p), x=np.arange(30)), "", "is an .npz archive"),
        (
            lambda p: np.save(open_bin(p), np.arange(30, dtype=np.int32)),
            "\n    dtype: uint16",
            "states its dtype",
        ),
        (lambda p: None, "", "was not found"),
    ],
)
def test_bad_files_are_named(tmp_path, write, extra, message):
    write(tmp_path)
    d = only(diagnostics(tmp_path, "t.bin", extra=extra))
    assert d.path == "data.train.path" and message in d.message and "t.bin" in d.message


def test_schema_refuses_dtype_for_npy_and_unknown_fields():
    base = {"type": "tokens", "path": "t.npy", "sequence_length": 8}
    with pytest.raises(ValidationError, match="states its own dtype"):
        DataSpec.model_validate({"train": {**base, "dtype": "uint16"}})
    with pytest.raises(ValidationError, match="greater than 0"):
        DataSpec.model_validate({"train": {**base, "stride": 0}})
    source = DataSpec.model_validate({"train": base}).train
    assert (source.stride, source.dtype, source.input, source.target) == (None,) * 4


def test_input_and_target_names_are_checked(tmp_path):
    save(tmp_path, np.arange(100, dtype=np.int32))
    diags = diagnostics(tmp_path, "tokens.npy", extra="\n    input: token\n    target: logit")
    assert [d.path for d in diags] == ["data.train.input", "data.train.target"]
    assert "Did you mean 'tokens'" in diags[0].hint


def test_data_error_is_a_spec_error():
    assert issubclass(DataError, SpecError)
