"""The host text layers against Keras's real layers, which need TensorFlow: skipped where
it is not installed (the project does not depend on it). Random texts and integers,
adapted on one array and called on another, in every output mode; the learned state
(`get_vocabulary()`, idf weights) and the outputs must be Keras's.
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tests.conformance.host_harness import as_array, build_host  # noqa: E402

WORDS = ["the", "The", "cat", "CAT!", "über", "Über", "a.b", "x", "y", "z", "naïve", "ÉTÉ"]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", " \r "]


def texts(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 8))
        words = rng.choice(WORDS, k).tolist()
        gaps = rng.choice(SPACES, k + 1).tolist()
        out.append("".join(g + w for g, w in zip(gaps, [*words, ""], strict=False)))
    return out


def keras_layer(layer: dict):
    args = {k: v for k, v in layer.items() if k != "type"}
    if isinstance(args.get("ngrams"), list):
        args["ngrams"] = tuple(args["ngrams"])
    return getattr(keras.layers, layer["type"])(**args)


def compare(layer: dict, shape: tuple, dtype: str, train, test) -> None:
    ours, _ = build_host(layer, shape, dtype)
    theirs = keras_layer(layer)
    if ours.needs_adapt:
        ours.adapt(as_array(train, dtype))
        theirs.adapt(np.asarray(train))
        state = ours.get_state()
        assert state["vocabulary"] == theirs.get_vocabulary(), layer
        if "idf_weights" in state:
            np.testing.assert_allclose(
                state["idf_weights"],
                np.asarray(getattr(theirs, "_lookup_layer", theirs).idf_weights),
                rtol=1e-6,
            )
    want = np.asarray(theirs(np.asarray(test)))
    got = ours(as_array(test, dtype))
    assert got.shape == want.shape, (layer, got.shape, want.shape)
    np.testing.assert_allclose(got, want.astype(got.dtype), rtol=1e-6, atol=1e-6)


TV_LAYERS = [
    {"output_sequence_length": 6},
    {"output_sequence_length": 4, "max_tokens": 6},
    {"output_sequence_length": 9, "ngrams": 2},
    {"output_sequence_length": 9, "ngrams": [3, 1]},
    {"output_sequence_length": 7, "standardize": "lower", "split": "character"},
    {"output_sequence_length": 5, "standardize": None},
    {"output_sequence_length": 5, "standardize": "strip_punctuation"},
    {"output_mode": "multi_hot", "max_tokens": 12, "pad_to_max_tokens": True},
    {"output_mode": "count", "max_tokens": 20, "pad_to_max_tokens": True},
    {"output_mode": "tf_idf", "max_tokens": 9, "pad_to_max_tokens": True},
    {"output_mode": "count", "vocabulary": ["the", "cat", "über"]},
    {"output_mode": "tf_idf", "vocabulary": ["the", "cat"], "idf_weights": [0.5, 1.5]},
]


@pytest.mark.parametrize("layer", TV_LAYERS, ids=str)
def test_text_vectorization_equals_keras(layer):
    rng = np.random.default_rng(0)
    compare({"type": "TextVectorization", **layer}, (), "string", texts(rng, 40), texts(rng, 10))


LOOKUP_LAYERS = [
    {},
    {"max_tokens": 4},
    {"num_oov_indices": 3},
    {"num_oov_indices": 2, "salt": [7, 11]},
    {"mask_token": "x"},
    {"output_mode": "one_hot", "max_tokens": 6, "pad_to_max_tokens": True},
    {"output_mode": "multi_hot", "max_tokens": 8, "pad_to_max_tokens": True},
    {"output_mode": "count", "mask_token": "x", "max_tokens": 8, "pad_to_max_tokens": True},
    {"output_mode": "tf_idf", "max_tokens": 8, "pad_to_max_tokens": True},
]


@pytest.mark.parametrize("layer", LOOKUP_LAYERS, ids=str)
def test_string_lookup_equals_keras(layer):
    rng = np.random.default_rng(1)
    words = np.array(WORDS, dtype=object)
    train, test = rng.choice(words, (30, 3)).tolist(), rng.choice(words, (8, 3)).tolist()
    test[0][0] = "never seen"
    compare({"type": "StringLookup", **layer}, (3,), "string", train, test)


@pytest.mark.parametrize(
    "layer",
    [
        {},
        {"num_oov_indices": 3},
        {"num_oov_indices": 3, "oov_method": "farmhash"},
        {"num_oov_indices": 2, "oov_method": "farmhash", "salt": 5},
        {"mask_token": 0, "output_mode": "count", "max_tokens": 9, "pad_to_max_tokens": True},
        {"output_mode": "tf_idf", "max_tokens": 9, "pad_to_max_tokens": True},
    ],
    ids=str,
)
def test_integer_lookup_equals_keras(layer):
    rng = np.random.default_rng(2)
    train, test = rng.integers(-3, 9, (30, 3)), rng.integers(-5, 12, (8, 3))
    compare({"type": "IntegerLookup", **layer}, (3,), "int64", train.tolist(), test.tolist())


@pytest.mark.parametrize(
    "layer",
    [
        {"num_bins": 7},
        {"num_bins": 7, "mask_value": "x"},
        {"num_bins": 5, "salt": [3, 99]},
        {"num_bins": 4, "output_mode": "multi_hot"},
        {"num_bins": 4, "output_mode": "count"},
    ],
    ids=str,
)
def test_hashing_equals_keras(layer):
    rng = np.random.default_rng(3)
    test = rng.choice(np.array(WORDS, dtype=object), (10, 3)).tolist()
    compare({"type": "Hashing", **layer}, (3,), "string", None, test)


def test_fortunes_example_vectorization_equals_keras():
    """The text example's TextVectorization (examples/fortunes/classifier.yaml), adapted
    on its 951 real texts, learns Keras's vocabulary and encodes them as Keras does."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "examples" / "fortunes"
    spec = yaml.safe_load((root / "classifier.yaml").read_text(encoding="utf-8"))
    layer = dict(spec["model"]["layers"][0])
    files = sorted((root / "data").glob("*/*.txt"))
    corpus = [f.read_text(encoding="utf-8") for f in files]
    assert len(corpus) == 951
    compare(layer, (), "string", corpus, corpus[::7])
