"""ONNX lowerings of the spatial resizing layers (`schema/layers/resizing.py`):
Cropping1D/2D/3D, ZeroPadding1D/2D/3D, UpSampling1D/2D/3D, and of the image
preprocessing layers that resize (`schema/layers/preprocessing.py`): Resizing and
RandomCrop at inference.

Cropping is a Slice, padding a Pad with zeros, and nearest upsampling repeats each
element (Unsqueeze, Expand, Reshape: exact for every dtype). Interpolating resizes of
images of known size contract each spatial axis with `jax.image.resize`'s own weight
matrix (`weight_matrix`, two MatMuls): exact for every kernel (triangle, Keys cubic,
Lanczos) and for antialiasing. Nearest resizing, and bilinear where the size is
unknown, use ONNX Resize on channels-first values with `half_pixel` coordinates, which
equals JAX for nearest (pick `floor((i + 0.5) * in / out)`: `round_prefer_ceil` of the
half-pixel coordinate) and for bilinear without antialias (clamping at the edges is
what JAX's renormalised edge weights amount to); the other modes are refused on
unknown sizes (onnxruntime's cubic mode also
fails once it moves the Transposes around Resize). Bool results follow Keras's
`saturate_cast`; interpolated integers are refused (Keras rounds them half to even,
and float sums of another order can fall on the other side of a tie).
Conventions: see `graph.py`.
"""

from __future__ import annotations

import numpy as np

from modelspec.compiler.layers.onnx.graph import OnnxGraph, Unsupported, autocast
from modelspec.schema.layers.resizing import edges
from modelspec.schema.layers.shape_math import int_tuple

_MODES = {
    "nearest": {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
    "bilinear": {"mode": "linear"},
}
"""Resize attributes (besides `half_pixel`) equal to `jax.image.resize`'s method."""

_RADIUS = {"bilinear": 1, "bicubic": 2, "lanczos3": 3, "lanczos5": 5}
"""Support radius of each interpolation kernel of `jax.image.resize`."""


def _kernel(method: str, x: np.ndarray) -> np.ndarray:
    """`jax.image.resize`'s kernels (`jax/_src/image/scale.py`) on distances `x` >= 0:
    triangle, Keys cubic with a = -0.5, Lanczos of radius 3 or 5."""
    if method == "bilinear":
        return np.maximum(0, 1 - x)
    if method == "bicubic":
        out = ((1.5 * x - 2.5) * x) * x + 1.0
        out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
        return np.where(x >= 2.0, 0.0, out)
    radius = _RADIUS[method]
    y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
    safe = np.where(x != 0, np.pi**2 * x**2, 1)
    out = np.where(x > 1e-3, y / safe, 1)
    return np.where(x > radius, 0.0, out)


def weight_matrix(size: int, out: int, method: str, antialias: bool) -> np.ndarray:
    """The (size, out) matrix `jax.image.resize` contracts one axis with (its
    `compute_weight_mat` without edge padding, in float32): kernel weights of every
    input pixel for each half-pixel sample position, widened by the downscale factor
    when antialiasing, normalised per output pixel, zero outside the image."""
    f32 = np.float32
    inv_scale = f32(1.0) / f32(out / size)
    kernel_scale = max(inv_scale, f32(1.0)) if antialias else f32(1.0)
    sample = (np.arange(out, dtype=f32) + f32(0.5)) * inv_scale - f32(0.5)
    x = np.abs(sample[None, :] - np.arange(size, dtype=f32)[:, None]) / kernel_scale
    weights = _kernel(method, x.astype(f32)).astype(f32)
    total = weights.sum(axis=0, keepdims=True)
    ok = np.abs(total) > 1000.0 * float(np.finfo(np.float32).eps)
    weights = np.where(ok, weights / np.where(total != 0, total, 1), 0)
    inside = (sample >= -0.5) & (sample <= size - 0.5)
    return np.where(inside[None, :], weights, 0).astype(f32)


def lower_cropping(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """`x[:, a:-b, ...]` on each spatial axis (an end of 0 crops nothing)."""
    x, _ = autocast(g, x, t.dtype)
    crops = edges(layer.cropping, layer.rank, "cropping")
    big = np.iinfo(np.int64).max
    starts = g.ints([a for a, _ in crops])
    ends = g.ints([-b if b else big for _, b in crops])
    return g.node("Slice", [x, starts, ends, g.ints(range(1, layer.rank + 1))])


def lower_zero_padding(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Zeros (of the input's dtype: False for bool) before and after each spatial axis."""
    x, dtype = autocast(g, x, t.dtype)
    pads = edges(layer.padding, layer.rank, "padding")
    begins = [0, *(a for a, _ in pads), 0]
    ends = [0, *(b for _, b in pads), 0]
    return g.node("Pad", [x, g.ints(begins + ends), g.const(0, dtype)])


def repeat(g: OnnxGraph, x: str, rank: int, axis: int, factor: int) -> str:
    """`jnp.repeat(x, factor, axis)` for a tensor of `rank`, any dtype and sizes."""
    if factor == 1:
        return x
    dims = g.node("Shape", [x])
    y = g.node("Unsqueeze", [x, g.ints([axis + 1])])
    reps = [1] * (rank + 1)
    reps[axis + 1] = factor
    y = g.node("Expand", [y, g.ints(reps)])
    scale = [1] * rank
    scale[axis] = factor
    return g.node("Reshape", [y, g.binary("Mul", dims, g.ints(scale))])


def saturate_bool(g: OnnxGraph, y: str) -> str:
    """Keras's `saturate_cast` of a float32 resize result to bool: clip to [0, 1], then
    any non-zero is True."""
    return g.cast(g.node("Clip", [y, g.const(0.0), g.const(1.0)]), "bool")


def resize(g: OnnxGraph, x: str, t, out, method: str, antialias: bool = False) -> str:
    """`jax.image.resize` of float32 channels-last images `x` (type `t`) to `out`:
    (height, width) ints, or an int64 value of them when the input size is unknown.

    With known sizes the interpolating methods contract each axis with JAX's own weight
    matrix (MatMul), so every kernel, antialiasing included, is exact; nearest, and
    bilinear without antialias on unknown sizes, use ONNX Resize (onnxruntime cannot run
    its cubic mode after moving the Transposes around it)."""
    rank, (height, width) = t.rank, t.shape[-3:-1]
    static = height is not None and width is not None and not isinstance(out, str)
    if method != "nearest" and static:
        return _matmul_resize(g, x, rank, (height, width), out, method, antialias)
    if method not in ("nearest", "bilinear") or antialias:
        raise Unsupported(
            f"{method} resizing{' with antialias' if antialias else ''} of images of "
            "unknown size is not exported to ONNX yet",
            "interpolation",
        )
    size = out if isinstance(out, str) else g.ints(out)
    nchw = g.to_channels_first(x, rank)
    lead = g.node("Slice", [g.node("Shape", [nchw]), g.ints([0]), g.ints([rank - 2])])
    sizes = g.node("Concat", [lead, size], {"axis": 0})
    attrs = {"coordinate_transformation_mode": "half_pixel", **_MODES[method]}
    return g.to_channels_last(g.node("Resize", [nchw, "", "", sizes], attrs), rank)


def _matmul_resize(g: OnnxGraph, x: str, rank: int, size, out, method, antialias) -> str:
    """(..., H, W, C) -> (..., C, H, W) @ Ww -> Wh^T @ . -> (..., H', W', C)."""
    rows = weight_matrix(size[0], out[0], method, antialias)
    cols = weight_matrix(size[1], out[1], method, antialias)
    perm = [*range(rank - 3), rank - 1, rank - 3, rank - 2]
    y = g.binary("MatMul", g.transpose(x, perm), g.initializer(cols, "resize_w"))
    y = g.binary("MatMul", g.initializer(np.ascontiguousarray(rows.T), "resize_h"), y)
    return g.transpose(y, [*range(rank - 3), rank - 2, rank - 1, rank - 3])


def _resize_dtype(g: OnnxGraph, x: str, t, out, method: str, out_dtype: str, aa=False) -> str:
    """Resize with Keras's dtype rules: floats in float32, cast to `out_dtype`; nearest
    on ints gathers in their dtype (exact through float32 up to 16-bit ints); bools
    resized bilinearly in float32 then saturated (a value is 0 only where every tap is
    0, in both graphs). Interpolated ints are refused: they are rounded half to even,
    and whether a tie like 3.5 comes out as 3.4999998 depends on the summation order."""
    if t.dtype.startswith(("float", "bfloat")):
        y = resize(g, g.cast_if(x, t.dtype, "float32"), t, out, method, aa)
        return g.cast_if(y, "float32", out_dtype)
    if method == "nearest":
        if t.dtype in ("int32", "uint32", "int64", "uint64"):
            raise Unsupported(
                f"nearest resizing of {t.dtype} inputs is not exported to ONNX yet", "inputs"
            )
        return g.cast(resize(g, g.cast(x, "float32"), t, out, method), t.dtype)
    if t.dtype != "bool" or method != "bilinear":
        raise Unsupported(
            f"{method} resizing of {t.dtype} inputs is not exported to ONNX: Keras rounds "
            "the interpolated values half to even, and onnxruntime's sums can land on the "
            "other side of a tie",
            "inputs",
        )
    return saturate_bool(g, resize(g, g.cast(x, "float32"), t, out, method, aa))


def lower_upsampling(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Each spatial axis repeated `size` times; UpSampling2D's interpolating modes
    resize to (h * sh, w * sw) as Keras's JAX backend does."""
    size = int_tuple(layer.size, layer.rank, "size")
    method = getattr(layer, "interpolation", "nearest")
    if method == "nearest":
        y, _ = autocast(g, x, t.dtype)
        for axis, factor in enumerate(size, start=1):
            y = repeat(g, y, t.rank, axis, factor)
        return y if y != x else g.node("Identity", [x])
    if t.shape[1] is not None and t.shape[2] is not None:
        target = [t.shape[1] * size[0], t.shape[2] * size[1]]
    else:
        spatial = g.node("Slice", [g.node("Shape", [x]), g.ints([1]), g.ints([3])])
        target = g.binary("Mul", spatial, g.ints(size))
    return _resize_dtype(g, x, t, target, method, shape.output.dtype)


def aspect_window(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """(top, left, crop_height, crop_width) of the largest centred window of the target
    aspect ratio: `compiler/layers/image_ops.aspect_window`'s arithmetic, repeated here
    because that module imports JAX."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def _static_size(t, field: str, what: str) -> tuple[int, int]:
    height, width = t.shape[-3], t.shape[-2]
    if height is None or width is None:
        raise Unsupported(f"{what} of images of unknown size is not exported to ONNX yet", field)
    return height, width


def _window(g: OnnxGraph, x: str, t, top: int, left: int, h: int, w: int) -> str:
    """`x[..., top:top + h, left:left + w, :]` (clipped at the image edge)."""
    starts, ends = g.ints([top, left]), g.ints([top + h, left + w])
    return g.node("Slice", [x, starts, ends, g.ints([t.rank - 3, t.rank - 2])])


def lower_resizing(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Keras's `ops.image.resize`: optionally the centred window of the target aspect
    ratio (`crop_to_aspect_ratio`) or the short side padded evenly with `fill_value`
    (`pad_to_aspect_ratio`), then resized (see `resize`; ints and bools keep their
    dtype as in `_resize_dtype`)."""
    target = (layer.height, layer.width)
    if layer.crop_to_aspect_ratio:
        height, width = _static_size(t, "crop_to_aspect_ratio", "Cropping to the aspect ratio")
        top, left, h, w = aspect_window(height, width, *target)
        x = _window(g, x, t, top, left, h, w)
        t = type(t)((*t.shape[:-3], h, w, t.shape[-1]), t.dtype)
    elif layer.pad_to_aspect_ratio:
        height, width = _static_size(t, "pad_to_aspect_ratio", "Padding to the aspect ratio")
        if not t.dtype.startswith(("float", "bfloat")):
            raise Unsupported(
                f"pad_to_aspect_ratio on {t.dtype} inputs is not exported to ONNX yet", "inputs"
            )
        pad_h = max(height, int(float(width * target[0]) / target[1]))
        pad_w = max(width, int(float(height * target[1]) / target[0]))
        top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
        x = g.cast_if(x, t.dtype, "float32")
        # Keras pads `band` on both sides of one axis: the height if it needs any.
        axis, band = (t.rank - 3, top) if top > 0 else (t.rank - 2, left)
        sizes = [height + 2 * top, width] if top > 0 else [height, width + 2 * max(left, 0)]
        t = type(t)((*t.shape[:-3], *sizes, t.shape[-1]), "float32")
        if band > 0:
            pads = [0] * t.rank * 2
            pads[axis] = pads[t.rank + axis] = band
            x = g.node("Pad", [x, g.ints(pads), g.const(layer.fill_value)])
    out = shape.output.dtype
    return _resize_dtype(g, x, t, list(target), layer.interpolation, out, layer.antialias)


def lower_random_crop(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """RandomCrop at inference: the (height, width) slice at the corner of the centred
    window of the target aspect ratio, resized bilinearly when the image is smaller."""
    height, width = _static_size(t, "height", "RandomCrop")
    top, left, _, _ = aspect_window(height, width, layer.height, layer.width)
    y = _window(g, g.cast_if(x, t.dtype, "float32"), t, top, left, layer.height, layer.width)
    got = (min(height - top, layer.height), min(width - left, layer.width))
    if got == (layer.height, layer.width):
        return y if y != x else g.node("Identity", [x])
    window = type(t)((*t.shape[:-3], *got, t.shape[-1]), "float32")
    return resize(g, y, window, [layer.height, layer.width], "bilinear")
