"""Keras's image resizing (`ops.image.resize`, JAX backend) in NumPy, for the host.

Keras's `image_dataset_from_directory(..., format="grain")` resizes each decoded image
with `ops.image.resize`, which on the JAX backend crops or zero-pads to the target
aspect ratio when asked and then calls `jax.image.resize(..., antialias=False)`. That
is reproduced here with the same float32 arithmetic (separable weight matrices from the
same kernels, the same edge rules, the same nearest-neighbour offsets), so data loading
needs no JAX: `runtime.data` stays free of it, nothing compiles per image size, and a
folder of photos of many sizes costs only NumPy matrix products. Results equal Keras's
to float32 rounding (the products may sum in another order); tests compare with Keras.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_F32 = np.float32
_EPS_GATE = 1000.0 * float(np.finfo(np.float32).eps)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(_F32(0), _F32(1) - np.abs(x))


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    out = ((_F32(1.5) * x - _F32(2.5)) * x) * x + _F32(1.0)
    out = np.where(x >= 1.0, ((_F32(-0.5) * x + _F32(2.5)) * x - _F32(4.0)) * x + _F32(2.0), out)
    return np.where(x >= 2.0, _F32(0), out)


def _lanczos(radius: float):
    def kernel(x: np.ndarray) -> np.ndarray:
        r, pi = _F32(radius), _F32(np.pi)
        y = r * np.sin(pi * x) * np.sin(pi * x / r)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, _F32(np.pi**2) * x * x, 1), _F32(1))
        return np.where(x > radius, _F32(0), out).astype(_F32)

    return kernel


_KERNELS = {
    "bilinear": _triangle,
    "bicubic": _keys_cubic,
    "lanczos3": _lanczos(3.0),
    "lanczos5": _lanczos(5.0),
}


@lru_cache(maxsize=256)
def weight_matrix(input_size: int, output_size: int, method: str) -> np.ndarray:
    """(input_size, output_size) float32 weights of one axis, as
    `jax._src.image.scale.compute_weight_mat` builds them (no antialiasing, no
    translation): kernel of the distance from each output sample to each input pixel
    centre, columns normalised to sum 1, samples outside the image zeroed."""
    scale = _F32(output_size / input_size)
    inv_scale = _F32(1.0) / scale
    sample = (np.arange(output_size, dtype=_F32) + _F32(0.5)) * inv_scale - _F32(0.5)
    x = np.abs(sample[np.newaxis, :] - np.arange(input_size, dtype=_F32)[:, np.newaxis])
    weights = _KERNELS[method](x.astype(_F32)).astype(_F32)
    total = np.sum(weights, axis=0, keepdims=True, dtype=_F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(
            np.abs(total) > _EPS_GATE, weights / np.where(total != 0, total, 1), _F32(0)
        )
    inside = (sample >= -0.5) & (sample <= _F32(input_size) - _F32(0.5))
    return np.where(inside[np.newaxis, :], weights, _F32(0)).astype(_F32)


def _nearest_offsets(input_size: int, output_size: int) -> np.ndarray:
    """`jax.image.resize(method="nearest")`'s source index of each output pixel."""
    offsets = (np.arange(output_size, dtype=_F32) + _F32(0.5)) * _F32(input_size)
    return np.floor(offsets / _F32(output_size)).astype(np.int64)


def _crop_window(height: int, width: int, target_h: int, target_w: int) -> np.ndarray:
    """Keras's `crop_to_aspect_ratio` window: (top, left, crop height, crop width)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    top = int(float(height - crop_h) / 2)
    left = int(float(width - crop_w) / 2)
    return np.array([top, left, crop_h, crop_w])


def _pad(image: np.ndarray, target_h: int, target_w: int) -> np.ndarray:
    """Keras's `pad_to_aspect_ratio` (JAX backend): zero rows above and below, or zero
    columns left and right, `int((padded - size) / 2)` on each side."""
    height, width = image.shape[:2]
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    top = int(float(pad_h - height) / 2)
    left = int(float(pad_w - width) / 2)
    if top > 0:
        return np.pad(image, ((top, top), (0, 0), (0, 0)))
    if left > 0:
        return np.pad(image, ((0, 0), (left, left), (0, 0)))
    return image


def resize(
    image: np.ndarray,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    *,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """One (height, width, channels) image resized to `size` as Keras's
    `ops.image.resize(image, size, interpolation, crop_to_aspect_ratio=...,
    pad_to_aspect_ratio=...)` does on the JAX backend; float32."""
    image = np.asarray(image, dtype=_F32)
    target_h, target_w = size
    if crop_to_aspect_ratio:
        top, left, crop_h, crop_w = _crop_window(*image.shape[:2], target_h, target_w)
        image = image[top : top + crop_h, left : left + crop_w]
    elif pad_to_aspect_ratio:
        image = _pad(image, target_h, target_w)
    height, width = image.shape[:2]
    if interpolation == "nearest":
        if height != target_h:
            image = image[_nearest_offsets(height, target_h)]
        if width != target_w:
            image = image[:, _nearest_offsets(width, target_w)]
        return np.ascontiguousarray(image)
    if height != target_h:  # jax.image.resize leaves axes of unchanged size alone
        w_h = weight_matrix(height, target_h, interpolation)
        image = np.tensordot(w_h, image, axes=([0], [0]))
    if width != target_w:
        w_w = weight_matrix(width, target_w, interpolation)
        image = np.einsum("hwc,wv->hvc", image, w_w)
    return np.ascontiguousarray(image, dtype=_F32)
