"""Image operations of the preprocessing layers, written as Keras 3's JAX backend writes
them (`keras/src/backend/jax/image.py`, `keras/src/utils/image_utils.py`) so the numbers
are the same: resizing with `jax.image.resize` (optionally cropped or padded to the
target aspect ratio), and affine transforms sampled with
`jax.scipy.ndimage.map_coordinates`. Images are channels-last batches
(batch, height, width, channels); sizes are static (known at trace time).

A transform is Keras's 8-vector [a0, a1, a2, b0, b1, b2, c0, c1] per image: the output
pixel (x, y) samples the input at (a0 x + a1 y + a2, b0 x + b1 y + b2) (the projective
c0, c1 are always 0 here, as in Keras's layers).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

AFFINE_ORDER = {"nearest": 0, "bilinear": 1}
"""`map_coordinates` spline order of each affine interpolation (Keras's table)."""


def aspect_window(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """(top, left, crop_height, crop_width) of the largest centred window with the
    target aspect ratio: Keras's `crop_to_aspect_ratio` / `smart_resize` arithmetic
    (float division truncated to int, at least one pixel)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def _pad_to_aspect(images: jax.Array, target_h: int, target_w: int, fill_value: float):
    """Pads the short side evenly with `fill_value` to the target aspect ratio (Keras
    concatenates `ones * fill_value`, so integer images come out float)."""
    batch, height, width, channels = images.shape
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
    if top > 0:
        band = jnp.ones((batch, top, width, channels), dtype=images.dtype) * fill_value
        return jnp.concatenate([band, images, band], axis=1)
    if left > 0:
        band = jnp.ones((batch, height, left, channels), dtype=images.dtype) * fill_value
        return jnp.concatenate([band, images, band], axis=2)
    return images


def resize(
    images: jax.Array,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    *,
    antialias: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_value: float = 0.0,
) -> jax.Array:
    """Keras's `ops.image.resize` (JAX backend, channels-last, batched)."""
    target_h, target_w = size
    if crop_to_aspect_ratio:
        top, left, crop_h, crop_w = aspect_window(*images.shape[1:3], target_h, target_w)
        images = images[:, top : top + crop_h, left : left + crop_w, :]
    elif pad_to_aspect_ratio:
        images = _pad_to_aspect(images, target_h, target_w, fill_value)
    shape = (images.shape[0], target_h, target_w, images.shape[-1])
    return jax.image.resize(images, shape, method=interpolation, antialias=antialias)


def smart_resize(images: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Keras's `smart_resize`: the largest centred window of the target aspect ratio,
    resized bilinearly to `size`."""
    return resize(images, size, crop_to_aspect_ratio=True)


def affine_transform(
    images: jax.Array,
    transform: jax.Array,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> jax.Array:
    """Keras's `ops.image.affine_transform` (JAX backend, channels-last, batched):
    `transform` is (batch, 8); each output pixel samples the input image at the
    transformed coordinates (channels kept), `fill_mode` outside it."""
    batch = images.shape[0]
    grid = jnp.meshgrid(*[jnp.arange(n) for n in images.shape[1:]], indexing="ij")
    indices = jnp.concatenate([jnp.expand_dims(g, axis=-1) for g in grid], axis=-1)
    indices = jnp.tile(indices, (batch, 1, 1, 1, 1))
    # Keras swaps (a0, a2) with (b1, b2): the row coordinate comes first.
    a0, a2, b1, b2 = transform[:, 0], transform[:, 2], transform[:, 4], transform[:, 5]
    transform = transform.at[:, 0].set(b1).at[:, 2].set(b2).at[:, 4].set(a0).at[:, 5].set(a2)
    transform = jnp.pad(transform, pad_width=[[0, 0], [0, 1]], constant_values=1)
    transform = jnp.reshape(transform, (batch, 3, 3))
    offset = jnp.pad(transform[:, 0:2, 2], pad_width=[[0, 0], [0, 1]])
    transform = transform.at[:, 0:2, 2].set(0)
    coordinates = jnp.einsum("Bhwij, Bjk -> Bhwik", indices, transform)
    coordinates = jnp.moveaxis(coordinates, source=-1, destination=1)
    coordinates += jnp.reshape(offset, shape=(*offset.shape, 1, 1, 1))
    sample = functools.partial(
        jax.scipy.ndimage.map_coordinates,
        order=AFFINE_ORDER[interpolation],
        mode=fill_mode,
        cval=fill_value,
    )
    return jax.vmap(sample)(images, coordinates)


def rotation_matrix(angle: jax.Array, height: int, width: int) -> jax.Array:
    """Keras's `_compute_affine_matrix` for a rotation by `angle` degrees (batch,)
    about the image centre (no translation, scale 1, no shear): (batch, 8)."""
    angle = angle * jnp.asarray(math.pi / 180.0, jnp.float32)
    cx = 0.5 * (jnp.asarray(width, angle.dtype) - 1)
    cy = 0.5 * (jnp.asarray(height, angle.dtype) - 1)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    zeros, ones = jnp.zeros_like(angle), jnp.ones_like(angle)
    shear = jnp.tan(zeros * jnp.asarray(math.pi / 180.0, jnp.float32))
    a0 = ones * (cos + shear * sin)
    a1 = ones * (-sin + shear * cos)
    a2 = zeros + cx - cx * a0 - cy * a1
    b0 = ones * (shear * cos + sin)
    b1 = ones * (shear * -sin + cos)
    b2 = zeros + cy - cx * b0 - cy * b1
    columns = [c[:, None] for c in (a0, a1, a2, b0, b1, b2)]
    return jnp.concatenate([*columns, jnp.zeros((angle.shape[0], 2))], axis=1)


def translation_matrix(translations: jax.Array) -> jax.Array:
    """Keras's translation transform from (batch, 2) pixel shifts [dx, dy]."""
    n = translations.shape[0]
    ones, zeros = jnp.ones((n, 1)), jnp.zeros((n, 1))
    parts = [ones, zeros, -translations[:, 0:1], zeros, ones, -translations[:, 1:]]
    return jnp.concatenate([*parts, jnp.zeros((n, 2))], axis=1)


def zoom_matrix(zooms: jax.Array, height: int, width: int) -> jax.Array:
    """Keras's zoom transform from (batch, 2) zooms [zx, zy] about the image centre."""
    n = zooms.shape[0]
    x_offset = ((jnp.asarray(width, jnp.float32) - 1.0) / 2.0) * (1.0 - zooms[:, 0:1])
    y_offset = ((jnp.asarray(height, jnp.float32) - 1.0) / 2.0) * (1.0 - zooms[:, 1:])
    zeros = jnp.zeros((n, 1))
    parts = [zooms[:, 0:1], zeros, x_offset, zeros, zooms[:, 1:], y_offset]
    return jnp.concatenate([*parts, jnp.zeros((n, 2))], axis=1)
