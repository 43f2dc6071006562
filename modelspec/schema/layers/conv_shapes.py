"""Shape rules of the convolution family (`conv.py`), shared by its spec classes and by
the NNX layers (which must read the same arguments the same way).

Written once here so that the transposed convolutions' output size and their padding
(Keras's `compute_conv_transpose_output_shape` and
`compute_conv_transpose_padding_args_for_jax`, keras/src/backend/common/backend_utils.py)
cannot drift apart: `infer` promises the first, the NNX layer pads by the second, and
the conformance tests compare both with Keras. Pure Python: no JAX.
"""

from __future__ import annotations

from modelspec.schema.layers.shape_math import int_tuple, need_float_input, need_rank, spatial_out
from modelspec.schema.tensors import Dim, ShapeError, TensorType

CONV_AXES = {1: "steps", 2: "height, width", 3: "depth, height, width"}
"""How messages name the spatial axes of a channels-last input, by their number."""


def need_conv_input(x: TensorType, rank: int) -> None:
    """`x` must be (batch, <`rank` spatial axes>, channels), Keras's default layout."""
    need_rank(x, rank + 2, f"(batch, {CONV_AXES[rank]}, channels)")


def window(spec, rank: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(kernel_size, strides, dilation_rate) of a conv spec, one entry per spatial axis."""
    return (
        int_tuple(spec.kernel_size, rank, "kernel_size"),
        int_tuple(spec.strides, rank, "strides"),
        int_tuple(spec.dilation_rate, rank, "dilation_rate"),
    )


def kernel_spatial(
    spec,
    x: TensorType,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[Dim, ...]:
    """Output sizes of the spatial axes of `x` under a forward (not transposed) window
    with the spec's `padding`; a window larger than a `valid` input is refused on
    `kernel_size`."""
    return spatial_out(
        x,
        kernel,
        strides,
        dilation,
        spec.padding,
        field="kernel_size",
        given=spec.kernel_size,
        smaller_than=f"the kernel {list(kernel)} with padding='valid'",
    )


def no_strided_dilation(spec, strides: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    """Keras's Conv and ConvTranspose refuse strides > 1 together with dilation > 1
    (its depthwise and separable convolutions accept the pair)."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ShapeError(
            "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
            field="strides",
            received=f"strides={spec.strides}, dilation_rate={spec.dilation_rate}",
        )


def need_float(x: TensorType, kind: str) -> None:
    """Keras's depthwise, separable and transposed convolutions pass integer inputs to
    `lax.conv_general_dilated` uncast, which refuses to mix them with float kernels."""
    need_float_input(
        x,
        f"{kind} needs a float input, but its input is {x.dtype} (Keras refuses it too)",
        hint="Declare the model input as float32, or put a Rescaling layer before it.",
    )


def output_padding(spec, rank: int, strides: tuple[int, ...]) -> tuple[int, ...] | None:
    """The transposed conv's `output_padding` per axis (None: Keras's default); each
    must be smaller than the stride on its axis, as Keras requires."""
    if spec.output_padding is None:
        return None
    pads = int_tuple(spec.output_padding, rank, "output_padding")
    for axis, (p, s) in enumerate(zip(pads, strides, strict=True)):
        if p >= s:
            raise ShapeError(
                f"output_padding must be smaller than strides on every axis, but on axis "
                f"{axis} it is {p} with strides {s}",
                field="output_padding",
                received=f"output_padding={spec.output_padding}, strides={spec.strides}",
            )
    return pads


def transpose_pads(
    kernel: int, stride: int, dilation: int, padding: str, out_pad: int | None
) -> tuple[int, int]:
    """(left, right) padding of the dilated input for `lax.conv_transpose`, exactly as
    Keras's JAX backend computes it: `valid` pads the full kernel span on both sides
    (plus output_padding, by default max(span, stride) - span, on the right); `same`
    pads stride + span - 2 in total (or span + span % 2 - 2 + output_padding), the odd
    one on the left but never more than span - 1 there."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if out_pad is None else out_pad
        return span - 1, span - 1 + extra
    total = stride + span - 2 if out_pad is None else span + span % 2 - 2 + out_pad
    left = min(total // 2 + total % 2, span - 1)
    return left, total - left


def transpose_size(
    size: Dim, kernel: int, stride: int, dilation: int, padding: str, out_pad: int | None
) -> Dim:
    """Output length of a transposed convolution on one axis (Keras's rule): `valid`
    gives (size - 1) * stride + span + output_padding, `same` gives size * stride (or
    (size - 1) * stride + span % 2 + output_padding when output_padding is set)."""
    if size is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if out_pad is None else out_pad
        return (size - 1) * stride + span + extra
    if out_pad is None:
        return size * stride
    return (size - 1) * stride + span % 2 + out_pad
