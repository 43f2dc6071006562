"""Image preprocessing and augmentation layers (NNX side of
`schema/layers/preprocessing.py`).

The random layers split Keras's two steps: `draw(key, x)` returns the transform
parameters Keras's `get_random_transformation` would (angles, shifts, flip coins...),
from the same distributions, and `apply(x, params)` applies them as Keras's
`transform_images` does (the image arithmetic is in `image_ops.py`). In training
`__call__` draws with `rngs.dropout()` (the spec's seed, a new key per step); at
inference the layers are the identity (cast to float32 as Keras does), except
RandomCrop, which center-crops (see its spec class). Tests feed Keras's own draws to
`apply` to check the training path against Keras's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from modelspec.compiler.layers.base import Layer
from modelspec.compiler.layers.image_ops import (
    affine_transform,
    aspect_window,
    resize,
    rotation_matrix,
    smart_resize,
    translation_matrix,
    zoom_matrix,
)
from modelspec.compiler.layers.resizing import _saturate
from modelspec.schema.layers.preprocessing import factor_range

Params = dict[str, Any]
"""The transform parameters of one draw, keyed as in Keras's transformation dicts."""


def _float(x: jax.Array) -> jax.Array:
    """Keras casts images to the float32 compute dtype (ints and float16 alike)."""
    return x.astype(jnp.float32)


class Resizing(Layer):
    def __init__(self, spec, x, shape, key):
        self.size = (spec.height, spec.width)
        self.interpolation = spec.interpolation
        self.options = (spec.antialias, spec.crop_to_aspect_ratio, spec.pad_to_aspect_ratio)
        self.fill_value = float(spec.fill_value)

    def __call__(self, x, *, training=False, rngs=None):
        if jnp.issubdtype(x.dtype, jnp.floating):
            x = _float(x)
        antialias, crop, pad = self.options
        y = resize(
            x,
            self.size,
            self.interpolation,
            antialias=antialias,
            crop_to_aspect_ratio=crop,
            pad_to_aspect_ratio=pad,
            fill_value=self.fill_value,
        )
        return y if y.dtype == x.dtype else _saturate(y, x.dtype)


class CenterCrop(Layer):
    def __init__(self, spec, x, shape, key):
        self.size = (spec.height, spec.width)

    def __call__(self, x, *, training=False, rngs=None):
        x = _float(x)
        (height, width), (h, w) = x.shape[1:3], self.size
        if height >= h and width >= w:
            top, left = (height - h) // 2, (width - w) // 2
            return x[:, top : top + h, left : left + w, :]
        return smart_resize(x, self.size)


class _Random(Layer):
    """Training: `apply(x, draw(rngs.dropout(), x))`; inference: float32 identity."""

    def __call__(self, x, *, training=False, rngs=None):
        if not training:
            return self.infer_images(x)
        return self.apply(x, self.draw(rngs.dropout(), x))

    def infer_images(self, x: jax.Array) -> jax.Array:
        return _float(x)

    def draw(self, key: jax.Array, x: jax.Array) -> Params:
        raise NotImplementedError

    def apply(self, x: jax.Array, params: Params) -> jax.Array:
        raise NotImplementedError


def _per_image(key: jax.Array, x: jax.Array, low: float, high: float, rank: int = 2):
    """One uniform draw per image, shaped (batch, 1) or (batch, 1, 1, 1)."""
    return jax.random.uniform(key, (x.shape[0],) + (1,) * (rank - 1), minval=low, maxval=high)


class RandomFlip(_Random):
    def __init__(self, spec, x, shape, key):
        self.mode = spec.mode

    def draw(self, key, x):
        return {"flips": jax.random.uniform(key, (x.shape[0], 1, 1, 1)) <= 0.5}

    def apply(self, x, params):
        x, flips = _float(x), params["flips"]
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            x = jnp.where(flips, jnp.flip(x, axis=2), x)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            x = jnp.where(flips, jnp.flip(x, axis=1), x)
        return x


class _Affine(_Random):
    """Shared by the layers that resample through `affine_transform`."""

    def __init__(self, spec, x, shape, key):
        self.interpolation = spec.interpolation
        self.fill_mode = spec.fill_mode
        self.fill_value = float(spec.fill_value)

    def warp(self, x: jax.Array, transform: jax.Array) -> jax.Array:
        return affine_transform(
            _float(x), transform, self.interpolation, self.fill_mode, self.fill_value
        )


class RandomRotation(_Affine):
    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        self.factor = factor_range(spec.factor, (-1, 1), "factor")

    def draw(self, key, x):
        low, high = self.factor
        angle = jax.random.uniform(key, (x.shape[0],), minval=low * 360.0, maxval=high * 360.0)
        return {"angle": angle}

    def apply(self, x, params):
        return self.warp(x, rotation_matrix(params["angle"], x.shape[1], x.shape[2]))


class RandomTranslation(_Affine):
    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        self.height_range = factor_range(spec.height_factor, (-1, 1), "height_factor")
        self.width_range = factor_range(spec.width_factor, (-1, 1), "width_factor")

    def draw(self, key, x):
        kh, kw = jax.random.split(key)
        dy = _per_image(kh, x, *self.height_range) * x.shape[1]
        dx = _per_image(kw, x, *self.width_range) * x.shape[2]
        return {"translations": jnp.concatenate([dx, dy], axis=1).astype(jnp.float32)}

    def apply(self, x, params):
        return self.warp(x, translation_matrix(params["translations"]))


class RandomZoom(_Affine):
    def __init__(self, spec, x, shape, key):
        super().__init__(spec, x, shape, key)
        factor = (-1, 1)
        self.height_range = factor_range(spec.height_factor, factor, "height_factor", open_low=True)
        self.width_range = (
            None
            if spec.width_factor is None
            else factor_range(spec.width_factor, factor, "width_factor", open_low=True)
        )

    def draw(self, key, x):
        kh, kw = jax.random.split(key)
        low, high = self.height_range
        height_zoom = _per_image(kh, x, 1.0 + low, 1.0 + high)
        if self.width_range is None:
            return {"height_zoom": height_zoom, "width_zoom": height_zoom}
        low, high = self.width_range
        return {"height_zoom": height_zoom, "width_zoom": _per_image(kw, x, 1.0 + low, 1.0 + high)}

    def apply(self, x, params):
        zooms = jnp.concatenate([params["width_zoom"], params["height_zoom"]], axis=1)
        transform = zoom_matrix(zooms.astype(jnp.float32), x.shape[1], x.shape[2])
        return self.warp(x, transform)


class RandomContrast(_Random):
    def __init__(self, spec, x, shape, key):
        self.factor = factor_range(spec.factor, (0, 1), "factor")
        self.value_range = tuple(spec.value_range)

    def draw(self, key, x):
        low, high = self.factor
        return {"contrast_factor": _per_image(key, x, 1.0 - low, 1.0 + high, rank=4)}

    def apply(self, x, params):
        x = _float(x)
        mean = jnp.mean(jnp.mean(x, axis=1, keepdims=True), axis=2, keepdims=True)
        y = (x - mean) * params["contrast_factor"] + mean
        return jnp.clip(y, *self.value_range)


class RandomBrightness(_Random):
    def __init__(self, spec, x, shape, key):
        self.factor = factor_range(spec.factor, (-1, 1), "factor")
        self.value_range = tuple(sorted(spec.value_range))

    def infer_images(self, x):
        return _float(x) if jnp.issubdtype(x.dtype, jnp.floating) else x

    def draw(self, key, x):
        low, high = self.value_range
        delta = _per_image(key, x, *self.factor, rank=4)
        return {"rgb_delta": delta * (high - low)}

    def apply(self, x, params):
        x = self.infer_images(x)
        return jnp.clip(x + params["rgb_delta"].astype(x.dtype), *self.value_range)


class RandomCrop(_Random):
    """Training crops a random window when the images are larger on both axes; the
    rest (and inference) takes Keras's fixed window (see the spec class)."""

    def __init__(self, spec, x, shape, key):
        self.size = (spec.height, spec.width)

    def infer_images(self, x):
        top, left, _, _ = aspect_window(*x.shape[1:3], *self.size)
        return self.apply(x, {"h_start": top, "w_start": left})

    def draw(self, key, x):
        (height, width), (h, w) = x.shape[1:3], self.size
        if not (height > h and width > w):
            top, left, _, _ = aspect_window(height, width, h, w)
            return {"h_start": top, "w_start": left}
        kh, kw = jax.random.split(key)
        top = jax.random.uniform(kh, (), minval=0, maxval=float(height - h + 1))
        left = jax.random.uniform(kw, (), minval=0, maxval=float(width - w + 1))
        return {"h_start": top.astype(jnp.int32), "w_start": left.astype(jnp.int32)}

    def apply(self, x, params):
        """Keras's `transform_images`: the window at (h_start, w_start), of the target
        size or clipped by the image edge, resized (bilinear) when it is not the
        target size."""
        x, (h, w) = _float(x), self.size
        top, left = params["h_start"], params["w_start"]
        if isinstance(top, int):  # a static window: Keras's slice, clipped at the edge
            window = x[:, top : top + h, left : left + w, :]
        else:
            window = jax.lax.dynamic_slice(x, (0, top, left, 0), (x.shape[0], h, w, x.shape[3]))
        if window.shape[1:3] != self.size:
            window = resize(window, self.size)
        return window
