"""Core layers: Dense, Activation, Dropout, Rescaling, Embedding, Identity."""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import PositiveInt, UnitInterval
from modelspec.schema.layer_args import Activation as ActivationFn
from modelspec.schema.layer_args import Initializer
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import float_out, known_last, need_min_rank
from modelspec.schema.tensors import INT_DTYPES, LayerShape, ParamInfo, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.core:"


class Dense(LayerSpec):
    """Densely connected layer: `activation(inputs @ kernel + bias)` on the last axis."""

    nnx: ClassVar[str] = _NNX + "Dense"
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


class Activation(LayerSpec):
    """Applies an activation function."""

    nnx: ClassVar[str] = _NNX + "Activation"
    type: Literal["Activation"]
    activation: ActivationFn
    """Activation function name (Keras name)."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class Dropout(LayerSpec):
    """Randomly zeroes a fraction `rate` of inputs in training, scaling the rest by
    1/(1-rate); identity at inference."""

    nnx: ClassVar[str] = _NNX + "Dropout"
    dropout_fields: ClassVar[tuple[str, ...]] = ("rate",)
    inverted_dropout: ClassVar[bool] = True
    type: Literal["Dropout"]
    rate: UnitInterval
    """Fraction of the inputs to drop, in [0, 1)."""
    noise_shape: list[PositiveInt | None] | None = None
    """Shape of the binary mask (batch axis included), e.g. `[null, 1, null]` to share
    the mask across timesteps. Default: the input shape."""

    def infer(self, x: TensorType) -> LayerShape:
        if self.noise_shape is not None:
            ns = self.noise_shape
            if len(ns) != x.rank:
                raise ShapeError(
                    f"noise_shape needs {x.rank} entries (batch axis included)",
                    field="noise_shape",
                    received=f"noise_shape={ns}",
                )
            for i, (n, d) in enumerate(zip(ns, x.shape, strict=True)):
                if n is not None and n != 1 and d is not None and n != d:
                    raise ShapeError(
                        f"noise_shape axis {i} must be 1, null or {d}",
                        field="noise_shape",
                        received=f"noise_shape={ns}",
                    )
        return LayerShape(TensorType(x.shape, float_out(x)))


class Rescaling(LayerSpec):
    """`inputs * scale + offset` (e.g. scale: 0.00392 to map pixels to [0, 1])."""

    nnx: ClassVar[str] = _NNX + "Rescaling"
    type: Literal["Rescaling"]
    scale: float
    """Multiplier."""
    offset: float = 0.0
    """Added after scaling."""

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x)))


class Embedding(LayerSpec):
    """Turns integer indices in [0, input_dim) into dense vectors of size output_dim."""

    nnx: ClassVar[str] = _NNX + "Embedding"
    type: Literal["Embedding"]
    input_dim: PositiveInt
    """Vocabulary size: the largest index + 1."""
    output_dim: PositiveInt
    """Dimension of the embedding vectors."""
    embeddings_initializer: Initializer = "uniform"
    """Initializer of the embedding matrix (Keras default: uniform in [-0.05, 0.05])."""

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


class Identity(LayerSpec):
    """Returns its input: a placeholder where a layer must be written but no operation
    is wanted.

    Like every Keras layer it autocasts float inputs to float32 (a float16 input comes
    out float32); int and bool inputs pass through unchanged. Keras also accepts nested
    structures of tensors; here it takes one tensor.
    """

    nnx: ClassVar[str] = _NNX + "Identity"
    type: Literal["Identity"]

    def infer(self, x: TensorType) -> LayerShape:
        return LayerShape(TensorType(x.shape, float_out(x) if x.is_float else x.dtype))
