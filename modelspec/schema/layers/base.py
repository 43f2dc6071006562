"""`LayerSpec`, the one contract every layer type fulfils, and the registry of types.

A layer type is one spec class in its family module (`schema/layers/<family>.py`) plus
the NNX class its `nnx` reference names (`compiler/layers/<family>.py`); defining the
spec class registers it, so nothing else lists layer types.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from modelspec.schema.layer_args import InputRef
from modelspec.schema.layers.calls import Call, Single
from modelspec.schema.layers.flops_math import per_example, times
from modelspec.schema.precision import DTypePolicyName
from modelspec.schema.regularizers import Regularizer, RegularizerSpec, resolve
from modelspec.schema.tensors import LayerShape, TensorType
from modelspec.schema.vocabulary import Registered, type_tag

Inputs = TensorType | list[TensorType] | dict[str, TensorType]
"""What `infer` receives: per the call kind, one type, a list, or a dict by argument."""
Masks = TensorType | None | list[TensorType | None] | dict[str, TensorType | None]
"""What `infer_mask` receives: the inputs' masks in the same form as `Inputs`."""


class LayerSpec(Registered):
    """The layer contract: one Keras layer type, from its YAML form to its NNX module.

    A subclass is the single place that says what a layer type is. Its parts, in the
    order a spec goes through them:

    1. **Fields** — the Keras constructor arguments, as pydantic fields with Keras's
       names and defaults; each field's attribute docstring is its user documentation
       (JSON Schema description). `type: Literal["<KerasClassName>"]` is the
       discriminator. Every layer also has `name`, `inputs` and `trainable` (below).
       Validation here is per field (ranges, choices); anything that depends on the
       input tensors belongs to `infer`.
    2. **Call kind** — `call` (class variable): `Single()` for `layer(x)`, `Merge()` for
       `layer([a, b, ...])`, `Named(names, required)` for `layer(query=q, value=v)`.
       The graph binds the spec's `inputs:` against it (`calls.py`), so a wrong form is
       reported at `inputs` with the form the layer expects.
    3. **Shape inference** — `infer(inputs) -> LayerShape`, pure Python: given the
       input TensorType(s) in the call kind's form (one, a list, or a dict by argument
       name) it returns the output type (shape with the batch axis first, dtype) and the
       ParamInfo list of every variable the layer will own — path (Keras's weight name),
       shape, logical axes (for sharding), collection (`params`, `batch_stats`, or
       `adapted`: state learned from the data, see `adapter`). It raises ShapeError
       (with `field=` the argument at fault, or "inputs") for inputs the layer cannot
       take; helpers are in `shape_math.py`. `check` and `summary`
       stop here and never import JAX.
    4. **Build** — `nnx` (class variable): "module:Class" of the Flax NNX class that
       implements the layer, imported only when a model is built. It is constructed as
       `Class(spec, inputs, shape, key)` and creates exactly the variables of
       `shape.params` (the conformance harness checks paths, shapes and axes).
    5. **Call** — the NNX module's `__call__(x, *, training, rngs)` (a list for
       `Merge`, keyword tensors for `Named`) returns what Keras 3 returns for the same
       weights; `training` switches dropout and batch statistics, `rngs.dropout()`
       draws randomness.
    6. **ONNX lowering** — `onnx` (class variable): "module:function" in
       `modelspec.compiler.layers.onnx` that writes the layer into an ONNX graph
       (signature in that package's `graph.py`); "" = not exportable yet.
    7. **FLOPs** — `flops(inputs, shape)`: forward FLOPs per example for `summary`,
       from the input types and the inferred shape (`flops_math.py`: the convention);
       by default `flops_per_element` per output element; matmul-like layers override.

    Behaviour the Keras-twin tests must know, as class variables:
    `call_kwargs` (fields Keras takes at call time, not in the constructor),
    `dropout_fields` (rates that make training mode random when > 0),
    `inverted_dropout` (training output is the inference output with elements zeroed
    or scaled by 1/(1-rate): Keras `Dropout`), `train_deterministic` (training mode is
    deterministic but differs from inference: batch statistics), `random_in_training`
    (training mode is random whatever the fields: the augmentation layers).

    Defining a subclass with a `type` Literal registers it in `LayerSpec.registry`
    (the idiom of `schema/vocabulary.py`); family bases without `type` (e.g. `_Conv`)
    are not registered.
    """

    registry: ClassVar[dict[str, type[LayerSpec]]] = {}
    """Keras type name -> spec class, in definition order."""
    call: ClassVar[Call] = Single()
    """How the layer is called (see `calls.py`)."""
    nnx: ClassVar[str] = ""
    """The NNX class implementing the layer, as "package.module:Class"."""
    onnx: ClassVar[str] = ""
    """The layer's ONNX lowering, "package.module:function" (see
    `compiler/layers/onnx/graph.py`), imported only by the ONNX export; "" = not
    exportable yet (the export refuses the model, naming every such layer)."""
    host: ClassVar[str] = ""
    """For layers that work on strings (TextVectorization, StringLookup, ...), which JAX
    cannot hold: the NumPy class ("package.module:Class") that runs the layer on the
    host, in the data pipeline, instead of an NNX class (see `runtime/host_stage.py`).
    Such a layer reads a model input directly; the device model receives its output."""
    autocast: ClassVar[bool] = True
    """Keras's `Layer.autocast`: under a mixed dtype policy the layer's float inputs are
    cast to the compute dtype before the call (False: they reach it unchanged, as for
    Keras's LayerNormalization). See `schema/precision.py`."""
    float32_compute: ClassVar[bool] = False
    """Under a mixed dtype policy the layer still computes in float32 — inputs upcast,
    variables read as float32 — and casts its output to the compute dtype, as Keras's
    normalization layers do (their variables are created with `autocast=False`)."""
    call_kwargs: ClassVar[tuple[str, ...]] = ()
    """Fields that Keras takes as call arguments (fixed per layer in a spec)."""
    nested_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding a nested layer spec (the `layer:` of a wrapper such as
    Bidirectional): Keras takes a layer instance there (see `nesting.py`)."""
    dropout_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding dropout rates: training draws random numbers when one is > 0."""
    inverted_dropout: ClassVar[bool] = False
    """Training output is the inference output with each element zeroed (at the rate
    in `dropout_fields[0]`) or scaled by 1/(1 - rate), as Keras's Dropout."""
    train_deterministic: ClassVar[bool] = False
    """Training mode is deterministic but differs from inference (batch statistics)."""
    random_in_training: ClassVar[bool] = False
    """Training mode always draws random numbers, whatever the fields (the random
    augmentation layers: RandomFlip, RandomRotation, ...); see `stochastic`."""
    masking: ClassVar[str] = "drop"
    """What the layer does with a Keras mask (a bool tensor, usually (batch, steps), that
    rides along with a tensor from `Embedding(mask_zero: true)` or `Masking`): "drop" —
    Keras's `supports_masking = False`: the mask is discarded and layers downstream see
    none (Keras also warns); "keep" — `supports_masking` with Keras's default
    `compute_mask`: the first input's mask passes to the output unchanged. Any other
    rule overrides `infer_mask` (and the NNX class's `compute_mask`)."""
    mask_arg: ClassVar[bool] = False
    """The NNX `__call__` takes the input masks, as the Keras layer's `call` does:
    `mask=` (one mask, or a list for merge layers), or `<argument>_mask=` per named
    argument (`query_mask=`, `value_mask=`). Layers without it never see a mask."""
    mask_args: ClassVar[tuple[str, ...]] = ()
    """With `mask_arg` and a `Named` call: the arguments whose masks the layer takes, as
    `<argument>_mask=` — Keras passes one only where its `call` has that parameter
    (query, value, key; not MultiHeadAttention's `attention_mask` tensor)."""
    clears_input_masks: ClassVar[bool] = False
    """Calling the layer removes the masks of its input tensors for the layers that run
    after it, as Keras's MultiHeadAttention does (`set_keras_mask(query, None)`): e.g. a
    residual `Add([x, attention])` then sees no mask on `x`."""
    activity_regularizer_refusal: ClassVar[str | None] = None
    """Why the layer type refuses `activity_regularizer` (None: Keras applies it to the
    layer's outputs, and so do we). Keras's MultiHeadAttention, for one, applies it to
    its internal projections instead."""
    adapter: ClassVar[str] = ""
    """For layers whose state Keras learns with `adapt()` (Normalization, ...): the
    "module:function" that computes it on the host, `function(layer, data) -> {path:
    array}` over the layer's input on the training split. It fills the variables
    `infer` declares with collection "adapted" (only when the spec leaves the state
    out); a fresh run calls it before step 1 (`runtime/adapt.py`)."""
    untracked_state: ClassVar[tuple[str, ...]] = ()
    """Adapted variables that Keras keeps as plain attributes of the same name rather
    than weights (Discretization's `bin_boundaries`): checkpointed here, but outside
    Keras's parameter counts."""
    flops_per_element: ClassVar[int] = 1
    """FLOPs per output element of the default `flops` rule: 1 for element-wise layers,
    0 for layers that only move data (reshape, crop, dropout at inference), ~5 for
    normalizations (`flops_math.py` states the whole convention)."""
    decode: ClassVar[str | None] = None
    """How the layer takes part in KV-cache generation (`modelspec generate`), where the
    model runs on a few new positions at a time in inference mode: "positionwise" —
    each sequence position is computed independently of the others (Dense on (batch,
    steps, features), a normalization over the last axis, dropout, which is the
    identity in inference), so the layer runs unchanged on the new positions;
    "offset" — it depends on the absolute position (PositionEmbedding), and its NNX
    class has `decode(x, *, position)`; "cached" — causal self-attention, whose NNX
    class has `init_cache` and `decode(..., cache=, position=)`; None — it mixes
    sequence positions otherwise (Conv1D, RNNs, pooling, Flatten), so a model holding
    it cannot generate. Where the answer depends on the arguments, `decode_kind`
    refines it."""

    name: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_./\-]*$")
    """Unique layer name; needed only when other layers reference it. Defaults to
    Keras-style `dense`, `dense_1`, ..."""
    inputs: InputRef | None = None
    """What this layer consumes: one name (a model input or a layer), a list of names
    (merge layers), or a mapping of call arguments (`{query: a, value: b}`).
    Default: the previous layer's output (the model's input for the first layer)."""
    trainable: bool = True
    """False freezes the layer: its weights count as non-trainable and get no updates."""
    activity_regularizer: Regularizer | None = None
    """Penalty on the layer's output(s), divided by the batch size and added to the
    training loss (Keras's base `Layer` argument; applied in inference too, so it is in
    `val_loss`)."""
    dtype_policy: DTypePolicyName | None = None
    """Keras dtype policy of this layer (Keras's `dtype=` argument): `float32`,
    `mixed_bfloat16` or `mixed_float16` (float32 variables, half-precision computation).
    Default: the model's `dtype_policy`."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A concrete layer type must name its NNX class (or, for a host layer, its
        NumPy class); then it registers itself."""
        if type_tag(cls) is not None and ":" not in cls.nnx and ":" not in cls.host:
            raise TypeError(f"{cls.__qualname__}.nnx must name its NNX class as 'module:Class'")
        super().__pydantic_init_subclass__(**kwargs)

    def decode_kind(self, x_rank: int) -> str | None:
        """`decode` for this layer's arguments and the rank of its (first) input, whose
        axis 1 is the sequence axis: a layer acting along an axis is positionwise only
        when that axis is not the sequence axis (`decode_rules.py` has the rules)."""
        return type(self).decode

    def infer(self, inputs: Inputs) -> LayerShape:
        """Output type and variables for `inputs` (see the class docstring, step 3)."""
        raise NotImplementedError(f"{type(self).__name__} has no shape inference")

    def flops(self, inputs: Inputs, shape: LayerShape) -> int | None:
        """Forward FLOPs per example, from the input types and the inferred shape (the
        convention: `flops_math.py`): by default `flops_per_element` per element of the
        first output, 0 for host layers (they run outside the model). Matmul-like
        layers override it. None when a size other than the batch axis is unknown."""
        if type(self).host:
            return 0
        return times(per_example(shape.output), type(self).flops_per_element)

    def infer_mask(
        self, inputs: Inputs, masks: Masks
    ) -> TensorType | tuple[TensorType | None, ...] | None:
        """The Keras mask of the output, from the input types and their masks (both in
        the call kind's form; None for an unmasked input). The default follows
        `masking`; layers that compute a mask (Embedding, Masking, merges) override it.
        A multi-output layer whose Keras `compute_mask` masks more than its first output
        returns a tuple, one entry per output (Bidirectional with `merge_mode: null`).
        Raises ShapeError for a masked input the layer would treat unlike Keras."""
        if self.masking != "keep":
            return None
        if isinstance(masks, dict):
            return next(iter(masks.values()), None)
        return masks[0] if isinstance(masks, list) else masks

    @property
    def output_labels(self) -> tuple[str, ...]:
        """One label per tensor the layer returns, in Keras's order. More than one
        makes it a multi-output layer (an RNN with `return_state: true`): the graph
        then addresses its tensors as `name.0`, `name.1`, ..., and `infer` returns as
        many output types. Decided by the fields alone, so the graph knows it before
        shape inference."""
        return ("output",)

    def activity_penalty(self) -> RegularizerSpec | None:
        """The regularizer applied to the layer's outputs: `activity_regularizer` (a name
        resolved to its config), or, for a layer whose arguments define one (Keras's
        ActivityRegularization), that one."""
        return None if self.activity_regularizer is None else resolve(self.activity_regularizer)

    @property
    def stochastic(self) -> bool:
        """Whether training mode draws random numbers (a dropout rate above zero, or a
        layer that is `random_in_training`)."""
        return type(self).random_in_training or any(getattr(self, f) for f in self.dropout_fields)


LAYER_REGISTRY = LayerSpec.registry
"""Keras type name -> spec class (filled as family modules are imported)."""
