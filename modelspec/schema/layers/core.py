"""Core layers: Dense, EinsumDense, Activation, Dropout, Rescaling, Embedding, Identity."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.decode_rules import activation_kind, along, einsum_kind
from modelspec.schema.layers.einsum_math import analyze_einsum
from modelspec.schema.layers.flops_math import affine, kernel_macs, per_example, rows, times
from modelspec.schema.layers.shape_math import (
    float_out,
    known_last,
    need_min_rank,
    need_noise_shape,
)
from modelspec.schema.regularizers import EmbeddingsPenalties, KernelPenalties
from modelspec.schema.tensors import INT_DTYPES, LayerShape, ParamInfo, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.core:"
_ONNX = "modelspec.compiler.layers.onnx.core:"


class Dense(LayerSpec, KernelPenalties):
    """Densely connected layer: `activation(inputs @ kernel + bias)` on the last axis."""

    nnx: ClassVar[str] = _NNX + "Dense"
    onnx: ClassVar[str] = _ONNX + "lower_dense"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along(None)
    type: Literal["Dense"]
    units: PositiveInt
    """Dimensionality of the output space."""
    activation: ActivationFn | None = None
    """Activation applied to the output (none by default)."""
    use_bias: bool = True
    """Whether to add a bias vector."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the kernel."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        d = known_last(x)
        params = [ParamInfo("kernel", (d, self.units), ("embed", "mlp"))]
        if self.use_bias:
            params.append(ParamInfo("bias", (self.units,), ("mlp",)))
        return LayerShape(TensorType((*x.shape[:-1], self.units), float_out(x)), tuple(params))

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """2·in·units per position, + bias and activation per output element."""
        return affine(kernel_macs(shape, rows(x)), shape.output, self.use_bias, self.activation)


class EinsumDense(LayerSpec, KernelPenalties):
    """A dense layer written as an einsum: `activation(einsum(equation, inputs, kernel)
    + bias)`, e.g. `equation: "abc,cd->abd"` is a Dense on the last axis and
    `"abc,cde->abde"` projects into heads.

    The kernel's shape comes from the equation: its axes named in the output take their
    sizes from `output_shape`, the others from the input."""

    nnx: ClassVar[str] = _NNX + "EinsumDense"
    onnx: ClassVar[str] = _ONNX + "lower_einsum_dense"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = einsum_kind
    type: Literal["EinsumDense"]
    equation: str
    """`input,kernel->output` axis letters: `ab,bc->ac`, `...ab,bc->...ac` (leading axes,
    the batch axis among them, pass through) or `ab...,bc->ac...` (trailing axes pass
    through). Without a leading `...` the first letter is the batch axis."""
    output_shape: PositiveInt | list[PositiveInt | None]
    """Output sizes without the batch axis and the `...` axes; null where the input
    decides (an axis shared with the input)."""
    activation: ActivationFn | None = None
    """Activation applied to the output (none by default)."""
    bias_axes: str | None = Field(None, min_length=1)
    """Output axis letters the bias varies along (e.g. `"d"`); none: no bias."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Initializer of the kernel (fans: its input-only axes in, its output axes out)."""
    bias_initializer: Initializer = "zeros"
    """Initializer of the bias."""

    def infer(self, x: TensorType) -> LayerShape:
        plan = analyze_einsum(self.equation, self.bias_axes, x.shape, self.output_shape)
        params = [ParamInfo("kernel", plan.kernel_shape, (None,) * len(plan.kernel_shape))]
        if plan.bias_shape is not None:
            params.append(ParamInfo("bias", plan.bias_shape, (None,) * len(plan.bias_shape)))
        return LayerShape(TensorType(plan.output_shape, float_out(x)), tuple(params))

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """2 per output element and contracted kernel index, + bias and activation."""
        operands, out = self.equation.replace(" ", "").split("->")
        lhs, kernel = operands.split(",")
        kernel_shape = next(p.shape for p in shape.params if p.path == "kernel")
        sizes = dict(zip(kernel, kernel_shape, strict=True))
        contracted = math.prod(sizes[c] for c in kernel if c in lhs and c not in out)
        macs = times(per_example(shape.output), contracted)
        return affine(macs, shape.output, self.bias_axes is not None, self.activation)


class Activation(LayerSpec):
    """Applies an activation function."""

    nnx: ClassVar[str] = _NNX + "Activation"
    onnx: ClassVar[str] = _ONNX + "lower_activation"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = activation_kind
    type: Literal["Activation"]
    activation: ActivationFn
    """Activation function name (Keras name)."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class Dropout(LayerSpec):
    """Randomly zeroes a fraction `rate` of inputs in training, scaling the rest by
    1/(1-rate); identity at inference."""

    nnx: ClassVar[str] = _NNX + "Dropout"
    onnx: ClassVar[str] = _ONNX + "lower_dropout"
    flops_per_element: ClassVar[int] = 0
    masking: ClassVar[str] = "keep"
    dropout_fields: ClassVar[tuple[str, ...]] = ("rate",)
    inverted_dropout: ClassVar[bool] = True
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["Dropout"]
    rate: UnitInterval
    """Fraction of the inputs to drop, in [0, 1)."""
    noise_shape: list[PositiveInt | None] | None = None
    """Shape of the binary mask (batch axis included), e.g. `[null, 1, null]` to share
    the mask across timesteps. Default: the input shape."""

    def infer(self, x: TensorType) -> LayerShape:
        need_noise_shape(self.noise_shape, x)
        return LayerShape(TensorType(x.shape, float_out(x)))


class Rescaling(LayerSpec):
    """`inputs * scale + offset` (e.g. scale: 0.00392 to map pixels to [0, 1])."""

    nnx: ClassVar[str] = _NNX + "Rescaling"
    onnx: ClassVar[str] = _ONNX + "lower_rescaling"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["Rescaling"]
    scale: float
    """Multiplier."""
    offset: float = 0.0
    """Added after scaling."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class Embedding(LayerSpec, EmbeddingsPenalties):
    """Turns integer indices in [0, input_dim) into dense vectors of size output_dim."""

    nnx: ClassVar[str] = _NNX + "Embedding"
    onnx: ClassVar[str] = _ONNX + "lower_embedding"
    flops_per_element: ClassVar[int] = 0
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["Embedding"]
    input_dim: PositiveInt
    """Vocabulary size: the largest index + 1."""
    output_dim: PositiveInt
    """Dimension of the embedding vectors."""
    embeddings_initializer: Initializer = "uniform"
    """Initializer of the embedding matrix (Keras default: uniform in [-0.05, 0.05])."""
    mask_zero: bool = False
    """Treat index 0 as padding: the output carries a mask (False where the id is 0)
    that RNNs, attention, GlobalAveragePooling1D and the loss honour, as in Keras. Index
    0 then cannot be a real token, so `input_dim` should be the vocabulary size + 1."""

    def infer(self, x: TensorType) -> LayerShape:
        if x.dtype not in INT_DTYPES:
            raise ShapeError(
                f"Embedding needs integer token ids, but its input is {x.dtype}",
                field="inputs",
                received=f"dtype={x.dtype}",
                hint="Declare the model input with `dtype: int32`.",
            )
        params = (ParamInfo("embeddings", (self.input_dim, self.output_dim), ("vocab", "embed")),)
        return LayerShape(TensorType((*x.shape, self.output_dim), "float32"), params)

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """Keras's `compute_mask`: `ids != 0` when `mask_zero`, else no mask at all
        (Keras's Embedding supports masking only with `mask_zero`)."""
        return TensorType(x.shape, "bool") if self.mask_zero else None


class Identity(LayerSpec):
    """Returns its input: a placeholder where a layer must be written but no operation
    is wanted.

    Like every Keras layer it autocasts float inputs to float32 (a float16 input comes
    out float32); int and bool inputs pass through unchanged. Keras also accepts nested
    structures of tensors; here it takes one tensor.
    """

    nnx: ClassVar[str] = _NNX + "Identity"
    onnx: ClassVar[str] = _ONNX + "lower_identity"
    flops_per_element: ClassVar[int] = 0
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    type: Literal["Identity"]

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x) if x.is_float else x.dtype))


class PositionEmbedding(LayerSpec):
    """A learned vector per position, as `keras_hub.layers.PositionEmbedding`: given
    (batch, steps, features) it returns the first `steps` rows of its
    (sequence_length, features) table broadcast to the input's shape. Add it to token
    embeddings (an `Add` layer) for a Transformer's token + position embedding — the
    block that keras-io examples write as a custom `TokenAndPositionEmbedding` layer.
    """

    nnx: ClassVar[str] = _NNX + "PositionEmbedding"
    onnx: ClassVar[str] = _ONNX + "lower_position_embedding"
    flops_per_element: ClassVar[int] = 0
    decode: ClassVar[str | None] = "offset"
    type: Literal["PositionEmbedding"]
    sequence_length: PositiveInt
    """The longest sequence the table covers (rows of the embedding table)."""
    initializer: Initializer = "glorot_uniform"
    """Initializer of the position table (keras_hub's default)."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 3, " (batch, steps, features)")
        steps, features = x.shape[-2], known_last(x)
        if steps is not None and steps > self.sequence_length:
            raise ShapeError(
                f"the input has {steps} steps but the position table covers only "
                f"sequence_length={self.sequence_length}",
                field="sequence_length",
                received=f"sequence_length={self.sequence_length}",
                hint=f"Set sequence_length to at least {steps}.",
            )
        params = (ParamInfo("embeddings", (self.sequence_length, features), (None, "embed")),)
        return LayerShape(TensorType(x.shape, float_out(x)), params)


class Masking(LayerSpec):
    """Masks the steps whose features all equal `mask_value`: the output is the input
    with those steps zeroed, and carries a mask over (batch, steps) — False at the
    skipped steps — that RNNs, attention, GlobalAveragePooling1D and the loss honour,
    as Keras's `Masking`."""

    nnx: ClassVar[str] = _NNX + "Masking"
    onnx: ClassVar[str] = _ONNX + "lower_masking"
    masking: ClassVar[str] = "keep"
    decode: ClassVar[str | None] = "positionwise"
    decode_kind = along(None)
    type: Literal["Masking"]
    mask_value: float = 0.0
    """A step is masked when every feature of it equals this value."""

    def infer(self, x: TensorType) -> LayerShape:
        need_min_rank(x, 2)
        return LayerShape(TensorType(x.shape, float_out(x) if x.is_float else x.dtype))

    def infer_mask(self, x: TensorType, mask: TensorType | None) -> TensorType | None:
        """`any(x != mask_value, axis=-1)`: a new mask, whatever came in."""
        return TensorType(x.shape[:-1], "bool")
