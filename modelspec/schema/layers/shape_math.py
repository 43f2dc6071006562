"""Shape arithmetic shared by the layer specs' `infer` methods (and by the NNX layers,
which must read the same arguments the same way).

One helper per idea, so that a Keras rule (int-or-tuple arguments, negative axes, the
sliding-window output length) is written once and every layer family agrees on it.
Every check raises ShapeError with the argument at fault, which the graph pass turns
into a diagnostic positioned on that argument. Pure Python: no JAX.
"""

from __future__ import annotations

from modelspec.schema.tensors import Dim, ShapeError, TensorType


def int_tuple(value: int | list[int] | tuple[int, ...], n: int, field: str) -> tuple[int, ...]:
    """Keras's int-or-tuple arguments (`kernel_size: 3` == `[3, 3]` for 2D)."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ShapeError(f"needs {n} value(s)", field=field, received=f"{field}={list(value)}")
    return tuple(value)


def normalize_axes(axes: int | list[int], x: TensorType, field: str = "axis") -> tuple[int, ...]:
    """Sorted, de-duplicated non-negative axes of `x` (Keras accepts negative ones).

    The batch axis cannot be chosen, and every chosen axis must have a known size
    (weights are shaped by it)."""
    out = []
    for a in [axes] if isinstance(axes, int) else axes:
        b = a + x.rank if a < 0 else a
        if not 1 <= b < x.rank:
            raise ShapeError(
                f"axis {a} is out of range for input {x} (the batch axis 0 cannot be normalized)",
                field=field,
                received=f"{field}={axes}",
            )
        if x.shape[b] is None:
            raise ShapeError(
                f"axis {a} of the input {x} must have a known size",
                field=field,
                received=f"{field}={axes}",
            )
        out.append(b)
    return tuple(sorted(set(out)))


def window_out(size: Dim, window: int, stride: int, dilation: int, padding: str) -> Dim:
    """Output length of a sliding window (convolution or pooling; the Keras/XLA rule):
    `same`/`causal` give ceil(size / stride); `valid` counts the whole windows that fit
    (0 when none does, which callers report)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    span = dilation * (window - 1) + 1
    return (size - span) // stride + 1 if size >= span else 0


def spatial_out(
    x: TensorType,
    window: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: str,
    *,
    field: str,
    given: object,
    smaller_than: str,
) -> tuple[Dim, ...]:
    """Output sizes of the spatial axes of a channels-last window op (convolution,
    pooling) on `x`; a ShapeError on `field` (set to `given`) when a `valid` window does
    not fit, saying the input is smaller than `smaller_than`."""
    spatial = tuple(
        window_out(x.shape[1 + i], window[i], strides[i], dilation[i], padding)
        for i in range(len(window))
    )
    if any(o == 0 for o in spatial):
        raise ShapeError(
            f"the input {x} is smaller than {smaller_than}",
            field=field,
            received=f"{field}={given}",
            hint=f"Use a smaller {field} or padding: same.",
        )
    return spatial


SPATIAL_AXES = {1: "steps", 2: "height, width"}
"""How messages name the spatial axes of a channels-last input, by their number."""


def need_channels_last(x: TensorType, spatial_rank: int) -> None:
    """`x` must be (batch, <`spatial_rank` spatial axes>, channels), the layout of Keras's
    default `data_format` for convolutions and poolings."""
    need_rank(x, spatial_rank + 2, f"(batch, {SPATIAL_AXES[spatial_rank]}, channels)")


def need_rank(x: TensorType, rank: int | tuple[int, ...], what: str) -> None:
    """`x` must have exactly `rank` axes (batch included); `what` names them."""
    ranks = (rank,) if isinstance(rank, int) else rank
    if x.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(
            f"expects rank-{want} input {what}, got rank {x.rank}",
            field="inputs",
            received=str(x),
            hint="Insert a Reshape (or Flatten) layer to get that rank.",
        )


def need_min_rank(x: TensorType, rank: int, what: str = "") -> None:
    """`x` must have at least `rank` axes (batch included)."""
    if x.rank < rank:
        raise ShapeError(
            f"expects input of rank >= {rank}{what}, got rank {x.rank}",
            field="inputs",
            received=str(x),
        )


FLOAT_INPUT_HINT = "Cast it first, e.g. with a Rescaling layer (scale: 1.0)."


def need_float_input(x: TensorType, message: str, hint: str = FLOAT_INPUT_HINT) -> None:
    """Refuse a non-float input with the layer's own `message` (why Keras cannot take
    it): one positioned error on `inputs` for every layer that needs floats."""
    if not x.is_float:
        raise ShapeError(message, field="inputs", received=f"dtype={x.dtype}", hint=hint)


def need_noise_shape(noise_shape: list[int | None] | None, x: TensorType) -> None:
    """A dropout `noise_shape` (batch axis included) must have one entry per axis of `x`,
    each 1, null (the input's size) or the input's size, so the mask broadcasts."""
    if noise_shape is None:
        return
    if len(noise_shape) != x.rank:
        raise ShapeError(
            f"noise_shape needs {x.rank} entries (batch axis included)",
            field="noise_shape",
            received=f"noise_shape={noise_shape}",
        )
    for i, (n, d) in enumerate(zip(noise_shape, x.shape, strict=True)):
        if n is not None and n != 1 and d is not None and n != d:
            raise ShapeError(
                f"noise_shape axis {i} must be 1, null or {d}",
                field="noise_shape",
                received=f"noise_shape={noise_shape}",
            )


def known_last(x: TensorType) -> int:
    """The size of the last (features) axis, which weights are shaped by."""
    if x.shape[-1] is None:
        raise ShapeError(
            "the last axis of the input must be known (not null)", field="inputs", received=str(x)
        )
    return x.shape[-1]


def float_out(x: TensorType) -> str:
    """Layers compute in float32 (Keras's default dtype policy) unless fed a wider float."""
    return x.dtype if x.dtype in ("float64",) else "float32"


def mul_dims(dims: tuple[Dim, ...]) -> Dim:
    """Product of dimensions; unknown (None) if any is unknown."""
    out = 1
    for d in dims:
        if d is None:
            return None
        out *= d
    return out
