"""Text and categorical lookup layers that run on the host: TextVectorization,
StringLookup, IntegerLookup, Hashing (Keras's `keras/src/layers/preprocessing/`).

JAX arrays cannot hold strings, so these layers run in NumPy in the data pipeline, before
batches reach the devices (`host` names the class, `compiler/layers/text.py`); each reads
a model input directly, and the device model receives its output. Their algorithms are
Keras's (which needs TensorFlow): TensorFlow's string ops, the vocabulary that `adapt()`
learns (count descending, ties by the token descending), the reserved indices, the OOV
buckets (FarmHash Fingerprint64, or SipHash-2-4 with a `salt`) and the encodings.

A vocabulary given in the spec is used as is; without one the layer is adapted on the
training split before step 1 and its state (vocabulary, idf weights) saved with the run.

Integer outputs are int32, not Keras's int64: JAX holds no int64 without x64, and
indices and bins fit. Other outputs are float32, as Keras declares them. Keras's
`sparse`, `ragged` and `invert` outputs, callables and vocabulary files are not offered.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.features import encoded_shape
from modelspec.schema.layers.text_rules import LookupRules, refuse_true, salt_pair
from modelspec.schema.tensors import INT_DTYPES, LayerShape, ShapeError, TensorType

_HOST = "modelspec.compiler.layers.text:"

LookupMode = Literal["int", "one_hot", "multi_hot", "count", "tf_idf"]
"""Keras's `output_mode` of the lookup layers."""
Salt = int | list[int]
"""One int (used for both SipHash key words) or two."""
INTEGER_INPUTS = tuple(d for d in INT_DTYPES if d != "bool")

SPARSE_WHY = "must be false: sparse outputs exist only on Keras's TensorFlow backend"


def need_input_dtype(x: TensorType, allowed: tuple[str, ...], layer: str) -> None:
    """The layer reads strings or integers; anything else is refused on `inputs`."""
    if x.dtype not in allowed:
        kinds = " or ".join(
            k
            for k, ok in (("strings", "string" in allowed), ("integers", "int32" in allowed))
            if ok
        )
        raise ShapeError(
            f"{layer} reads {kinds}, not {x.dtype}",
            field="inputs",
            received=f"input dtype {x.dtype}",
            hint="Declare the model input with the right dtype (`dtype: string` for text).",
        )


def lookup_output(x: TensorType, mode: str, depth: int | None) -> TensorType:
    """Keras's IndexLookup/Hashing output: indices of the input's shape in `int` mode;
    `one_hot` adds a `depth` axis (replacing a last axis of size 1); `multi_hot`,
    `count`, `tf_idf` reduce the tokens of each sample, (batch, tokens) -> (batch, depth):
    Keras's bincount treats a rank-1 input as one sample and mixes rank-3+ axes."""
    if x.rank < 1:
        raise ShapeError("needs a batch axis", field="inputs", received=f"input shape {x}")
    if mode == "int":
        return TensorType(x.shape, "int32")
    assert depth is not None
    if mode in ("multi_hot", "count", "tf_idf") and x.rank > 2:
        raise ShapeError(
            f"output_mode '{mode}' takes inputs (batch, tokens)",
            field="inputs",
            received=f"input shape {x}",
            hint="Reshape the tokens to (batch, tokens) first.",
        )
    return encoded_shape(x, "count" if mode == "tf_idf" else mode, depth)


class _Lookup(LayerSpec):
    """Arguments shared by StringLookup and IntegerLookup (Keras's IndexLookup)."""

    max_tokens: int | None = None
    """Largest vocabulary size, counting the mask and OOV indices; null: no cap."""
    num_oov_indices: int = 1
    """OOV buckets. With more than one, an OOV token goes to bucket `hash(token) %
    num_oov_indices` (FarmHash Fingerprint64, or SipHash with `salt`); with 0, an OOV
    input is an error when the layer is called."""
    idf_weights: list[float] | None = None
    """With `output_mode: tf_idf` and a `vocabulary`: the inverse document frequency of
    each vocabulary term (reserved indices get their average unless listed)."""
    invert: bool = False
    """Keras maps indices back to tokens with `invert: true`; not offered here."""
    output_mode: LookupMode = "int"
    """`int`: the index of each token (int32); `one_hot`: a vector per token (a last
    axis of size 1 is replaced); `multi_hot`: 1 for each index present in the sample
    (input (batch, tokens)); `count`: how often; `tf_idf`: count times idf weight."""
    pad_to_max_tokens: bool = False
    """Make `one_hot`/`multi_hot`/`count`/`tf_idf` outputs `max_tokens` wide whatever
    the vocabulary size (needed without a `vocabulary`: the width must be known)."""
    sparse: bool = False
    """Keras's sparse outputs (TensorFlow backend only): must be false."""
    salt: Salt | None = None
    """SipHash key for the OOV buckets (one int for both words, or two); null:
    FarmHash Fingerprint64."""

    def floormod(self) -> bool:
        """Whether OOV values go to buckets by `value mod num_oov_indices` (IntegerLookup's
        `oov_method: floormod`) rather than by hash."""
        return False

    def rules(self) -> LookupRules:
        """The lookup's arguments, as the rules shared with the host layer read them."""
        return LookupRules(
            max_tokens=self.max_tokens,
            num_oov_indices=self.num_oov_indices,
            mask_token=self.mask_token,
            oov_token=self.oov_token,
            output_mode=self.output_mode,
            pad_to_max_tokens=self.pad_to_max_tokens,
            vocabulary=None if self.vocabulary is None else tuple(self.vocabulary),
            idf_weights=None if self.idf_weights is None else tuple(self.idf_weights),
            salt=salt_pair(self.salt),
            floormod=self.floormod(),
        )

    def check_args(self) -> LookupRules:
        """Keras's constructor checks; the lookup rules."""
        refuse_true(
            self,
            "invert",
            "must be false: the inverse lookup (indices back to vocabulary entries) "
            "is not offered; it belongs after the model, on its predictions",
            hint="Map predicted indices back with the vocabulary in `preprocessing.json`.",
        )
        refuse_true(self, "sparse", SPARSE_WHY)
        rules = self.rules()
        rules.check()
        return rules

    def infer(self, x: TensorType) -> LayerShape:
        rules = self.check_args()
        depth = None if self.output_mode == "int" else rules.need_depth()
        return LayerShape(lookup_output(x, self.output_mode, depth))


class StringLookup(_Lookup):
    """Maps strings to integer indices through a vocabulary: OOV buckets first (index 0
    by default), then the vocabulary, with the mask token at 0 before them if set. Runs
    on the host. Without `vocabulary` the vocabulary is adapted on the training split:
    tokens by count, ties by the token in descending order, capped at `max_tokens`."""

    nnx: ClassVar[str] = ""
    host: ClassVar[str] = _HOST + "StringLookup"
    type: Literal["StringLookup"]
    mask_token: str | None = None
    """A token that stands for masked inputs: index 0 in `int` mode, dropped in the
    other modes; null: no mask index."""
    oov_token: str = "[UNK]"
    """The vocabulary entry shown for the OOV indices."""
    vocabulary: list[str] | None = Field(None, min_length=1)
    """The vocabulary (it may start with the reserved mask and OOV tokens, in that
    order); null: adapted from the training data."""
    encoding: Literal["utf-8"] = "utf-8"
    """Text encoding: strings are UTF-8 throughout."""

    def infer(self, x: TensorType) -> LayerShape:
        need_input_dtype(x, ("string",), self.type)
        return super().infer(x)


class IntegerLookup(_Lookup):
    """Maps integers to contiguous indices through a vocabulary, as StringLookup does
    for strings (OOV buckets, then the vocabulary; the mask token at 0 if set). Runs on
    the host; adapted like StringLookup without `vocabulary`."""

    nnx: ClassVar[str] = ""
    host: ClassVar[str] = _HOST + "IntegerLookup"
    type: Literal["IntegerLookup"]
    mask_token: int | None = None
    """A value that stands for masked inputs: index 0 in `int` mode, dropped in the
    other modes; null: no mask index."""
    oov_token: int = -1
    """The vocabulary entry shown for the OOV indices."""
    vocabulary: list[int] | None = Field(None, min_length=1)
    """The vocabulary (it may start with the reserved mask and OOV values, in that
    order); null: adapted from the training data."""
    vocabulary_dtype: Literal["int64"] = "int64"
    """Only int64, as in Keras."""
    oov_method: Literal["floormod", "farmhash"] = "floormod"
    """OOV bucket with `num_oov_indices > 1`: `floormod` (value mod num_oov_indices)
    or `farmhash` (the hash of the value's decimal string)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_input_dtype(x, INTEGER_INPUTS, self.type)
        if self.salt is not None and self.oov_method != "farmhash":
            raise ShapeError(
                "can only be used with oov_method 'farmhash'",
                field="salt",
                received=f"oov_method={self.oov_method}",
            )
        return super().infer(x)

    def floormod(self) -> bool:
        return self.oov_method == "floormod"


class TextVectorization(LayerSpec):
    """Turns text into token indices or a bag of tokens, on the host: standardize
    (ASCII lower-casing and Keras's punctuation regex, as TensorFlow computes them),
    split (ASCII whitespace runs, or characters), n-grams, then a StringLookup with
    "" (index 0, padding) and "[UNK]" (index 1, OOV) reserved in `int` mode, only
    "[UNK]" (index 0) in the others. Without `vocabulary` it is adapted on the
    training split (tokens by count, ties by the token descending)."""

    nnx: ClassVar[str] = ""
    host: ClassVar[str] = _HOST + "TextVectorization"
    type: Literal["TextVectorization"]
    max_tokens: int | None = None
    """Largest vocabulary size, counting the reserved "" and "[UNK]" entries."""
    standardize: Literal["lower_and_strip_punctuation", "lower", "strip_punctuation"] | None = (
        "lower_and_strip_punctuation"
    )
    """`lower` lower-cases ASCII letters only (TensorFlow's `strings.lower` without an
    encoding: "Über" stays "Über"); `strip_punctuation` removes ASCII punctuation
    !"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~; null: neither."""
    split: Literal["whitespace", "character"] | None = "whitespace"
    """`whitespace`: tokens between runs of ASCII whitespace; `character`: one token
    per Unicode code point; null: the whole string is one token (input shape [1])."""
    ngrams: PositiveInt | list[PositiveInt] | None = None
    """n: the 1- to n-grams of each text (all unigrams first, then bigrams, ...); a list:
    those widths in that order; joined with a space."""
    output_mode: Literal["int", "multi_hot", "count", "tf_idf"] = "int"
    """`int`: token indices, padded with 0 or cut to `output_sequence_length`;
    `multi_hot`, `count`, `tf_idf`: one vector per text, as wide as the vocabulary."""
    output_sequence_length: PositiveInt | None = None
    """Length of `int` outputs (required here: Keras's default pads each batch to its
    longest text, a shape that changes from batch to batch)."""
    pad_to_max_tokens: bool = False
    """Make `multi_hot`/`count`/`tf_idf` outputs `max_tokens` wide whatever the
    vocabulary size (needed without a `vocabulary`: the width must be known)."""
    vocabulary: list[str] | None = Field(None, min_length=1)
    """The vocabulary (it may start with the reserved entries); null: adapted."""
    idf_weights: list[float] | None = None
    """With `output_mode: tf_idf` and a `vocabulary`: the idf weight of each term."""
    ragged: bool = False
    """Keras's ragged outputs (TensorFlow backend only): must be false."""
    sparse: bool = False
    """Keras's sparse outputs (TensorFlow backend only): must be false."""
    encoding: Literal["utf-8"] = "utf-8"
    """Text encoding: strings are UTF-8 throughout."""

    def rules(self) -> LookupRules:
        return LookupRules(
            max_tokens=self.max_tokens,
            num_oov_indices=1,
            mask_token="",
            oov_token="[UNK]",
            output_mode=self.output_mode,
            pad_to_max_tokens=self.pad_to_max_tokens,
            vocabulary=None if self.vocabulary is None else tuple(self.vocabulary),
            idf_weights=None if self.idf_weights is None else tuple(self.idf_weights),
        )

    @property
    def ngram_widths(self) -> tuple[int, ...] | None:
        """Keras's `_ngrams`: an int n means widths 1..n."""
        if isinstance(self.ngrams, int):
            return tuple(range(1, self.ngrams + 1))
        return None if self.ngrams is None else tuple(self.ngrams)

    def infer(self, x: TensorType) -> LayerShape:
        need_input_dtype(x, ("string",), self.type)
        refuse_true(
            self,
            "ragged",
            "must be false: ragged outputs exist only on Keras's TensorFlow backend",
            hint="Use `output_sequence_length`.",
        )
        refuse_true(self, "sparse", SPARSE_WHY)
        if x.shape[1:] not in ((), (1,)):
            raise ShapeError(
                "reads one text per sample: input shape (batch,) or (batch, 1)",
                field="inputs",
                received=f"input shape {x}",
            )
        if self.split is None and x.rank == 1:
            raise ShapeError(
                "with `split: null` each text is one token, and Keras reads a rank-1 "
                "batch of them as one sequence",
                field="inputs",
                received=f"input shape {x}",
                hint="Declare the input with shape [1].",
            )
        if self.output_mode != "int" and self.output_sequence_length is not None:
            raise ShapeError(
                "must not be set if `output_mode` is not 'int'",
                field="output_sequence_length",
                received=f"output_sequence_length={self.output_sequence_length}",
            )
        rules = self.rules()
        rules.check()
        if self.output_mode != "int":
            return LayerShape(TensorType((x.shape[0], rules.need_depth()), "float32"))
        if self.output_sequence_length is None:
            raise ShapeError(
                "is required in output_mode 'int': Keras's default pads each batch to "
                "its longest text, so the output length would change between batches",
                field="output_sequence_length",
                received="output_sequence_length=None",
                hint="Set `output_sequence_length` (texts are padded with 0 or cut).",
            )
        return LayerShape(TensorType((x.shape[0], self.output_sequence_length), "int32"))


class Hashing(LayerSpec):
    """Hashes strings or integers into `num_bins` bins, on the host: FarmHash
    Fingerprint64 of the UTF-8 bytes (integers as their decimal string) modulo the bins,
    or SipHash-2-4 keyed by `salt`, as TensorFlow's `to_hash_bucket_fast`/`_strong`.
    With `mask_value`, masked inputs go to bin 0 and the others to 1 + hash mod
    (num_bins - 1)."""

    nnx: ClassVar[str] = ""
    host: ClassVar[str] = _HOST + "Hashing"
    type: Literal["Hashing"]
    num_bins: PositiveInt = Field(le=2**31 - 1)
    """Number of bins, the mask bin included when `mask_value` is set."""
    mask_value: str | int | None = None
    """An input value mapped to bin 0 (same type as the input); null: no mask bin."""
    salt: Salt | None = None
    """SipHash key (one int for both words, or two); null: FarmHash Fingerprint64."""
    output_mode: Literal["int", "one_hot", "multi_hot", "count"] = "int"
    """`int`: the bin of each value (int32); `one_hot`: a vector per value (a last axis
    of size 1 is replaced); `multi_hot`: 1 for each bin present in the sample (input
    (batch, values)); `count`: how often."""
    sparse: bool = False
    """Keras's sparse outputs (TensorFlow backend only): must be false."""

    def infer(self, x: TensorType) -> LayerShape:
        need_input_dtype(x, ("string", *INTEGER_INPUTS), self.type)
        refuse_true(self, "sparse", SPARSE_WHY)
        salt_pair(self.salt)
        strings = x.dtype == "string"
        if self.mask_value is not None and isinstance(self.mask_value, str) != strings:
            raise ShapeError(
                "must have the input's type (TensorFlow compares them)",
                field="mask_value",
                received=f"mask_value={self.mask_value!r} for input dtype {x.dtype}",
            )
        return LayerShape(lookup_output(x, self.output_mode, self.num_bins))
