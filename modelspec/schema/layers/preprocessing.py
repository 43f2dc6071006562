"""Image preprocessing and augmentation layers that live inside the model (Keras's
`keras/src/layers/preprocessing/image_preprocessing/`): random transforms draw from the
spec's seed in training and are the identity at inference.

Inputs are batches of channels-last images, (batch, height, width, channels): a rank-3
tensor is refused, because Keras would read it as one unbatched image while here the
first axis is always the batch. Keras's `data_format`, `seed` and bounding-box arguments
are not offered (unknown-argument errors); randomness comes from the spec's seed, as
for Dropout. Output dtypes follow what Keras's layers return: float inputs come out
float32; where Keras keeps an integer dtype in both modes (Resizing, RandomBrightness)
it is kept; where Keras's inference and training dtypes differ, the input is refused.

Factors follow Keras's `_set_factor`: a number `f` means [-|f|, |f|] (clamped to the
layer's lower bound, so RandomContrast's `f` means [0, f]), two numbers are sorted into
[lower, upper]; `factor_range` computes it for both `infer` and the NNX layers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from modelspec.schema.base import PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.shape_math import need_float_input, need_rank
from modelspec.schema.tensors import LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.preprocessing:"
_ONNX = "modelspec.compiler.layers.onnx.preprocessing:"

Factor = float | list[float]
"""A number f (the range [-|f|, |f|]) or two numbers [lower, upper]."""
FillMode = Literal["reflect", "wrap", "constant", "nearest"]
"""How points outside the image are filled by the affine layers (Keras's four)."""
AffineInterpolation = Literal["nearest", "bilinear"]
"""Interpolation of the affine layers (Keras's `affine_transform` has these two)."""

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int32": (-(2**31), 2**31 - 1)}
"""Values an integer image dtype holds (int64 is int32 in JAX without x64)."""
INT_RANGES["int64"] = INT_RANGES["int32"]


def factor_range(
    value: float | list[float],
    bounds: tuple[float, float],
    field: str,
    *,
    open_low: bool = False,
) -> tuple[float, float]:
    """Keras's (lower, upper) of a factor argument: two numbers are sorted, a number f
    is [max(-|f|, bounds[0]), |f|]; every number must lie in `bounds` (the range Keras
    documents; `open_low` excludes the lower bound, RandomZoom's (-1, 1])."""
    low, high = bounds
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
    shown = f"{field}={value}"
    numbers = value if isinstance(value, list) else [value]
    if len(numbers) != 2 and isinstance(value, list):
        raise ShapeError(
            f"needs a number or a list of two numbers in {interval}", field=field, received=shown
        )
    for v in numbers:
        if v > high or v < low or (open_low and v == low):
            raise ShapeError(f"must lie in {interval}", field=field, received=shown)
    if isinstance(value, list):
        lower, upper = sorted(value)
        return float(lower), float(upper)
    f = abs(float(value))
    return max(-f, float(low)), f


def need_images(x: TensorType) -> None:
    """A batch of channels-last images: (batch, height, width, channels)."""
    need_rank(x, 4, "(batch, height, width, channels)")


def need_float(x: TensorType, layer: str, why: str) -> None:
    """Refuse non-float images where Keras's inference and training dtypes differ."""
    need_float_input(
        x,
        f"{layer} needs float images: {why}",
        hint="Declare the input as float32 (the values are the same), or put a "
        "Rescaling layer before it.",
    )


class _Image(LayerSpec):
    """A layer on (batch, height, width, channels) whose output is float32 with the
    input's shape (the random transforms); subclasses with a size override `infer`."""

    def infer(self, x: TensorType) -> LayerShape:
        need_images(x)
        return LayerShape(TensorType(x.shape, "float32"))


class _Sized(LayerSpec):
    """A layer whose output images are `height` x `width`."""

    height: PositiveInt
    """Height of the output images."""
    width: PositiveInt
    """Width of the output images."""

    def sized(self, x: TensorType, dtype: str) -> LayerShape:
        need_images(x)
        return LayerShape(TensorType((x.shape[0], self.height, self.width, x.shape[3]), dtype))


class _Random(_Image):
    """A random augmentation: a new draw per training step, the identity at inference."""

    random_in_training: ClassVar[bool] = True
    flops_per_element: ClassVar[int] = 0
    decode: ClassVar[str | None] = "positionwise"


class Resizing(_Sized):
    """Resizes images to `height` x `width` with `jax.image.resize`, as Keras's JAX
    backend does. Float inputs come out float32; integer and bool inputs keep their
    dtype (rounded and clipped to it, as Keras does)."""

    nnx: ClassVar[str] = _NNX + "Resizing"
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.resizing:lower_resizing"
    type: Literal["Resizing"]
    interpolation: Literal["bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"] = "bilinear"
    """Interpolation: the modes Keras's JAX backend has."""
    crop_to_aspect_ratio: bool = False
    """Resize without distorting the aspect ratio: first take the largest centred window
    of the target aspect ratio."""
    pad_to_aspect_ratio: bool = False
    """Resize without distorting the aspect ratio: first pad the short side evenly with
    `fill_value`."""
    fill_mode: Literal["constant"] = "constant"
    """How padding is filled with `pad_to_aspect_ratio`: only `constant`, as in Keras."""
    fill_value: float = 0.0
    """The padding value with `pad_to_aspect_ratio`."""
    antialias: bool = False
    """Antialias when downsampling (`jax.image.resize`'s `antialias`)."""

    def infer(self, x: TensorType) -> LayerShape:
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ShapeError(
                "only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be true",
                field="pad_to_aspect_ratio",
                received="crop_to_aspect_ratio=True, pad_to_aspect_ratio=True",
            )
        return self.sized(x, "float32" if x.is_float else x.dtype)


class CenterCrop(_Sized):
    """Crops the central `height` x `width` window of each image. When the image is
    smaller than that on either axis, Keras's `smart_resize` is used instead: the
    largest centred window of the target aspect ratio, resized (bilinear) to
    `height` x `width`. Always float32, as Keras."""

    nnx: ClassVar[str] = _NNX + "CenterCrop"
    flops_per_element: ClassVar[int] = 0
    onnx: ClassVar[str] = _ONNX + "lower_center_crop"
    type: Literal["CenterCrop"]

    def infer(self, x: TensorType) -> LayerShape:
        return self.sized(x, "float32")


class RandomCrop(_Sized):
    """In training, crops one random `height` x `width` window (the same for the whole
    batch, as Keras) when the images are larger than that on both axes. Otherwise, and
    at inference, it takes Keras's fixed window: a `height` x `width` slice starting at
    the corner of the largest centred window of the target aspect ratio (clipped at the
    image edge), resized bilinearly to `height` x `width` when the image is smaller.
    Output float32.

    At inference Keras 3.15 returns the input unchanged instead (keras-team/keras#21868,
    a known bug: the model's declared output shape is then wrong); applying the fixed
    window is the fix proposed there (keras-team/keras#22328)."""

    nnx: ClassVar[str] = _NNX + "RandomCrop"
    onnx: ClassVar[str] = "modelspec.compiler.layers.onnx.resizing:lower_random_crop"
    flops_per_element: ClassVar[int] = 0
    random_in_training: ClassVar[bool] = True
    type: Literal["RandomCrop"]

    def infer(self, x: TensorType) -> LayerShape:
        return self.sized(x, "float32")


class RandomFlip(_Random):
    """Flips each image of the batch with probability 1/2. With
    `horizontal_and_vertical`, one coin per image decides both flips (Keras 3's rule:
    an image is flipped both ways or not at all)."""

    nnx: ClassVar[str] = _NNX + "RandomFlip"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomFlip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal_and_vertical"
    """Which flips: `horizontal` (left-right), `vertical` (up-down) or both."""


class _Affine(_Random):
    """Shared arguments of the layers built on Keras's `affine_transform`."""

    fill_mode: FillMode = "reflect"
    """Points outside the image: `reflect` (about the edge of the last pixel), `wrap`,
    `constant` (`fill_value`) or `nearest` (the edge pixel)."""
    interpolation: AffineInterpolation = "bilinear"
    """`bilinear` or `nearest`."""
    fill_value: float = 0.0
    """The value outside the image with `fill_mode: constant`."""


class RandomRotation(_Affine):
    """Rotates each image by a random angle, a fraction of a full turn drawn uniformly
    from the `factor` range (0.1 means up to ±36 degrees), about its centre."""

    nnx: ClassVar[str] = _NNX + "RandomRotation"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomRotation"]
    factor: Factor
    """Fraction of 2π: a number f (angles in [-f, f] turns) or [lower, upper], each in
    [-1, 1]. Positive values rotate counter-clockwise."""

    def infer(self, x: TensorType) -> LayerShape:
        factor_range(self.factor, (-1, 1), "factor")
        return super().infer(x)


class RandomTranslation(_Affine):
    """Shifts each image by a random fraction of its height and width."""

    nnx: ClassVar[str] = _NNX + "RandomTranslation"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomTranslation"]
    height_factor: Factor
    """Vertical shift as a fraction of the height: f (in [-f, f]) or [lower, upper],
    each in [-1, 1]; negative shifts up."""
    width_factor: Factor
    """Horizontal shift as a fraction of the width: f or [lower, upper], each in
    [-1, 1]; negative shifts left."""

    def infer(self, x: TensorType) -> LayerShape:
        factor_range(self.height_factor, (-1, 1), "height_factor")
        factor_range(self.width_factor, (-1, 1), "width_factor")
        return super().infer(x)


class RandomZoom(_Affine):
    """Zooms each image by a random factor per axis about its centre: a factor z
    samples a (1 + z) larger area, so positive values zoom out and negative zoom in."""

    nnx: ClassVar[str] = _NNX + "RandomZoom"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomZoom"]
    height_factor: Factor
    """Vertical zoom: f (in [-f, f]) or [lower, upper], each in (-1, 1]."""
    width_factor: Factor | None = None
    """Horizontal zoom, same form; default: the vertical zoom (aspect ratio kept)."""

    def infer(self, x: TensorType) -> LayerShape:
        factor_range(self.height_factor, (-1, 1), "height_factor", open_low=True)
        if self.width_factor is not None:
            factor_range(self.width_factor, (-1, 1), "width_factor", open_low=True)
        return super().infer(x)


class RandomContrast(_Random):
    """Scales each image's deviation from its per-channel mean by a random factor c,
    `(x - mean) * c + mean`, then clips to `value_range`. As in Keras 3, c is drawn
    from [1 - lower, 1 + upper] of the factor range, and a single number f gives the
    range [0, f], so c lies in [1, 1 + f].

    Float images only: Keras returns integer images unchanged (integer) at inference but
    float32 in training."""

    nnx: ClassVar[str] = _NNX + "RandomContrast"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomContrast"]
    factor: Factor
    """A number f in [0, 1] (c in [1, 1 + f]) or [lower, upper] in [0, 1] (c in
    [1 - lower, 1 + upper])."""
    value_range: list[int | float] = Field(default=[0, 255], min_length=2, max_length=2)
    """[low, high] of the pixel values; outputs are clipped to it (written order, as
    Keras: not sorted)."""

    def infer(self, x: TensorType) -> LayerShape:
        factor_range(self.factor, (0, 1), "factor")
        need_images(x)
        need_float(
            x,
            "RandomContrast",
            "Keras returns integer images unchanged at inference but float32 in training",
        )
        return super().infer(x)


class RandomBrightness(_Random):
    """Adds one random delta per image, `factor` times the width of `value_range`, then
    clips to `value_range`. Integer images stay integer (the delta is cast to the
    image dtype, as Keras does) when `value_range` is two integers."""

    nnx: ClassVar[str] = _NNX + "RandomBrightness"
    onnx: ClassVar[str] = _ONNX + "lower_inference_identity"
    type: Literal["RandomBrightness"]
    factor: Factor
    """A number f (delta in [-f, f] of the range) or [lower, upper], each in [-1, 1]."""
    value_range: list[int | float] = Field(default=[0, 255], min_length=2, max_length=2)
    """[low, high] of the pixel values (sorted, as Keras); outputs are clipped to it."""

    def infer(self, x: TensorType) -> LayerShape:
        factor_range(self.factor, (-1, 1), "factor")
        need_images(x)
        if x.dtype == "bool":
            need_float(
                x,
                "RandomBrightness",
                "Keras returns bool images unchanged at inference but int32 in training",
            )
        if x.is_float:
            return LayerShape(TensorType(x.shape, "float32"))
        low, high = sorted(self.value_range)
        lowest, highest = INT_RANGES[x.dtype]
        if not all(isinstance(v, int) for v in self.value_range) or low < lowest or high > highest:
            raise ShapeError(
                f"with {x.dtype} images, value_range must be two integers within "
                f"[{lowest}, {highest}]: Keras clips to it in the image dtype (float bounds "
                "would turn training outputs float32 while inference stays integer)",
                field="value_range",
                received=f"value_range={self.value_range}",
                hint=f"e.g. value_range: [0, {min(255, highest)}], or declare float32 images.",
            )
        return LayerShape(TensorType(x.shape, x.dtype))
