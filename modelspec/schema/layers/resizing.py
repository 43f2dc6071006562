"""Spatial resizing layers: Cropping1D/2D/3D, ZeroPadding1D/2D/3D, UpSampling1D/2D/3D.

They change the length of the spatial axes of a channels-last input (batch, <1-3 spatial
axes>, channels) and leave the batch and channel axes alone. Keras's `data_format` is not
offered: inputs are channels-last, Keras's default (as for the convolutions), and a
`data_format` key is refused as an unknown field. Like Keras, float16/bfloat16 inputs
come out float32 and integer/bool inputs keep their dtype (`policy_dtype`).

Cropping and padding take Keras's forms of `cropping` / `padding`, read by `edges`:
an int (the same on both sides of every spatial axis); for 1D a list [before, after];
for 2D/3D a list with one entry per spatial axis, each an int (symmetric) or
[before, after].
"""

from __future__ import annotations

from typing import ClassVar, Literal

from modelspec.schema.base import NonNegativeInt, PositiveInt
from modelspec.schema.layers.base import LayerSpec
from modelspec.schema.layers.flops_math import per_example, times
from modelspec.schema.layers.reshaping import policy_dtype
from modelspec.schema.layers.shape_math import int_tuple, need_rank
from modelspec.schema.tensors import Dim, LayerShape, ShapeError, TensorType

_NNX = "modelspec.compiler.layers.resizing:"
_ONNX = "modelspec.compiler.layers.onnx.resizing:"

Edges1 = NonNegativeInt | list[NonNegativeInt]
"""1D cropping/padding: an int or [before, after]."""
EdgesN = NonNegativeInt | list[NonNegativeInt | list[NonNegativeInt]]
"""2D/3D cropping/padding: an int, or one entry per spatial axis (int or [before, after])."""

AXIS_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}
"""How messages name the spatial axes of a channels-last input, by their number."""


def edges(value: int | list, n: int, field: str) -> tuple[tuple[int, int], ...]:
    """Keras's cropping/padding argument as (before, after) per spatial axis, for `n`
    spatial axes (Keras's `standardize_tuple` per axis); a ShapeError on `field` when
    the list has the wrong form."""
    shown = f"{field}={value}"
    if isinstance(value, int):
        return ((value, value),) * n
    if n == 1:
        if len(value) != 2:
            raise ShapeError("needs an int or 2 ints [before, after]", field=field, received=shown)
        return (tuple(value),)
    names = ", ".join(AXIS_NAMES[n])
    if len(value) != n:
        raise ShapeError(
            f"needs an int or {n} entries, one per spatial axis ({names}), each an int "
            "(both sides) or [before, after]",
            field=field,
            received=shown,
        )
    out = []
    for entry in value:
        if isinstance(entry, int):
            out.append((entry, entry))
        elif len(entry) != 2:
            raise ShapeError(
                f"each entry is an int (both sides) or [before, after], got {entry}",
                field=field,
                received=shown,
            )
        else:
            out.append((entry[0], entry[1]))
    return tuple(out)


class _Spatial(LayerSpec):
    """Shared by the spatial resizing layers; `rank` is the number of spatial axes, and
    `resize` maps each spatial axis's size to the output's."""

    rank: ClassVar[int] = 0
    flops_per_element: ClassVar[int] = 0  # copies (interpolating UpSampling2D: below)

    def infer(self, x: TensorType) -> LayerShape:
        n = self.rank
        need_rank(x, n + 2, f"(batch, {', '.join(AXIS_NAMES[n])}, channels)")
        spatial = self.resize(x)
        return LayerShape(TensorType((x.shape[0], *spatial, x.shape[-1]), policy_dtype(x)))

    def resize(self, x: TensorType) -> tuple[Dim, ...]:
        """The output sizes of `x`'s spatial axes (None stays None); per layer kind."""
        raise NotImplementedError(f"{type(self).__name__} does not say how it resizes")


class _Cropping(_Spatial):
    """Removes `cropping` elements from the start and end of each spatial axis."""

    def resize(self, x: TensorType) -> tuple[Dim, ...]:
        crops = edges(self.cropping, self.rank, "cropping")
        out: list[Dim] = []
        for name, size, (a, b) in zip(AXIS_NAMES[self.rank], x.shape[1:-1], crops, strict=True):
            if size is not None and size - a - b < 1:
                raise ShapeError(
                    f"cropping {a} + {b} from the {name} axis (size {size}) leaves nothing; "
                    "Keras requires the cropping to be smaller than the input",
                    field="cropping",
                    received=f"cropping={self.cropping}",
                    hint=f"Crop less than {size} in total from the {name} axis.",
                )
            out.append(None if size is None else size - a - b)
        return tuple(out)


class Cropping1D(_Cropping):
    """Crops the steps axis of (batch, steps, features)."""

    nnx: ClassVar[str] = _NNX + "Cropping1D"
    onnx: ClassVar[str] = _ONNX + "lower_cropping"
    rank: ClassVar[int] = 1
    type: Literal["Cropping1D"]
    cropping: Edges1 = 1
    """Steps to remove: an int (from both ends) or [start, end]. Default 1 (Keras's
    (1, 1))."""


class Cropping2D(_Cropping):
    """Crops height and width of (batch, height, width, channels). Channels-last only:
    Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "Cropping2D"
    onnx: ClassVar[str] = _ONNX + "lower_cropping"
    rank: ClassVar[int] = 2
    type: Literal["Cropping2D"]
    cropping: EdgesN = 0
    """Pixels to remove: an int (all four sides), [height, width] (each from both ends),
    or [[top, bottom], [left, right]]; an entry may be an int or a pair. Default 0
    (Keras's ((0, 0), (0, 0)))."""


class Cropping3D(_Cropping):
    """Crops depth, height and width of (batch, depth, height, width, channels).
    Channels-last only: Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "Cropping3D"
    onnx: ClassVar[str] = _ONNX + "lower_cropping"
    rank: ClassVar[int] = 3
    type: Literal["Cropping3D"]
    cropping: EdgesN = 1
    """Elements to remove: an int (every side), [depth, height, width] (each from both
    ends), or three [start, end] pairs; an entry may be an int or a pair. Default 1
    (Keras's ((1, 1), (1, 1), (1, 1)))."""


class _ZeroPadding(_Spatial):
    """Adds `padding` zeros at the start and end of each spatial axis."""

    def resize(self, x: TensorType) -> tuple[Dim, ...]:
        pads = edges(self.padding, self.rank, "padding")
        sizes = zip(x.shape[1:-1], pads, strict=True)
        return tuple(None if d is None else d + a + b for d, (a, b) in sizes)


class ZeroPadding1D(_ZeroPadding):
    """Pads the steps axis of (batch, steps, features) with zeros. Channels-last only:
    Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "ZeroPadding1D"
    onnx: ClassVar[str] = _ONNX + "lower_zero_padding"
    rank: ClassVar[int] = 1
    type: Literal["ZeroPadding1D"]
    padding: Edges1 = 1
    """Zeros to add: an int (at both ends) or [start, end]."""


class ZeroPadding2D(_ZeroPadding):
    """Pads height and width of (batch, height, width, channels) with zeros.
    Channels-last only: Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "ZeroPadding2D"
    onnx: ClassVar[str] = _ONNX + "lower_zero_padding"
    rank: ClassVar[int] = 2
    type: Literal["ZeroPadding2D"]
    padding: EdgesN = 1
    """Zeros to add: an int (all four sides), [height, width] (each at both ends), or
    [[top, bottom], [left, right]]; an entry may be an int or a pair. Default 1 (Keras's
    (1, 1))."""


class ZeroPadding3D(_ZeroPadding):
    """Pads depth, height and width of (batch, depth, height, width, channels) with
    zeros. Channels-last only: Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "ZeroPadding3D"
    onnx: ClassVar[str] = _ONNX + "lower_zero_padding"
    rank: ClassVar[int] = 3
    type: Literal["ZeroPadding3D"]
    padding: EdgesN = 1
    """Zeros to add: an int (every side), [depth, height, width] (each at both ends), or
    three [start, end] pairs; an entry may be an int or a pair. Default 1 (Keras's
    ((1, 1), (1, 1), (1, 1)))."""


class _UpSampling(_Spatial):
    """Multiplies the size of each spatial axis by its entry of `size`."""

    def resize(self, x: TensorType) -> tuple[Dim, ...]:
        factors = int_tuple(self.size, self.rank, "size")
        sizes = zip(x.shape[1:-1], factors, strict=True)
        return tuple(None if d is None else d * f for d, f in sizes)


class UpSampling1D(_UpSampling):
    """Repeats each step of (batch, steps, features) `size` times."""

    nnx: ClassVar[str] = _NNX + "UpSampling1D"
    onnx: ClassVar[str] = _ONNX + "lower_upsampling"
    rank: ClassVar[int] = 1
    type: Literal["UpSampling1D"]
    size: PositiveInt = 2
    """How many times each step is repeated (an int, as in Keras)."""


class UpSampling2D(_UpSampling):
    """Enlarges height and width of (batch, height, width, channels) by `size`:
    `nearest` repeats rows and columns; the other modes interpolate exactly as Keras's
    JAX backend does (`jax.image.resize`, no antialiasing), and integer inputs are
    rounded and clipped back to their dtype as Keras does. Channels-last only: Keras's
    `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "UpSampling2D"
    onnx: ClassVar[str] = _ONNX + "lower_upsampling"
    rank: ClassVar[int] = 2
    type: Literal["UpSampling2D"]
    size: PositiveInt | list[PositiveInt] = 2
    """Upsampling factors: an int (both axes) or [height, width]. Default 2 (Keras's
    (2, 2))."""
    interpolation: Literal["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5"] = "nearest"
    """`nearest` (repeat), `bilinear`, `bicubic`, `lanczos3` or `lanczos5` — the modes
    Keras's JAX backend implements (its TensorFlow-only `area`, `gaussian` and
    `mitchellcubic` are refused)."""

    def flops(self, x: TensorType, shape: LayerShape) -> int | None:
        """`nearest` copies (0); interpolation is separable: a multiply-add per kernel
        tap, per axis, per output element."""
        taps = {"nearest": 0, "bilinear": 2, "bicubic": 4, "lanczos3": 6, "lanczos5": 10}
        return times(per_example(shape.output), 2 * 2 * taps[self.interpolation])


class UpSampling3D(_UpSampling):
    """Repeats each element of (batch, depth, height, width, channels) `size` times
    along each spatial axis. Channels-last only: Keras's `data_format` is not offered."""

    nnx: ClassVar[str] = _NNX + "UpSampling3D"
    onnx: ClassVar[str] = _ONNX + "lower_upsampling"
    rank: ClassVar[int] = 3
    type: Literal["UpSampling3D"]
    size: PositiveInt | list[PositiveInt] = 2
    """Upsampling factors: an int (all axes) or [depth, height, width]. Default 2
    (Keras's (2, 2, 2))."""
