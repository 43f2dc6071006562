"""ONNX lowerings of the image preprocessing layers (`schema/layers/preprocessing.py`)
at inference: the random augmentations (RandomFlip, RandomRotation, RandomTranslation,
RandomZoom, RandomContrast, RandomBrightness) are the identity after Keras's cast to
the output dtype; CenterCrop is a slice when the image is at least the target size
(its resize fallback is not lowered yet and is refused). Conventions: see `graph.py`."""

from __future__ import annotations

from modelspec.compiler.layers.onnx.graph import OnnxGraph, Unsupported


def lower_inference_identity(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """Random augmentation at inference: the input, cast to the declared output dtype."""
    y = g.cast_if(x, t.dtype, shape.output.dtype)
    return y if y != x else g.node("Identity", [x])


def lower_center_crop(g: OnnxGraph, layer, weights, x, t, shape) -> str:
    """The centred (height, width) window: `(size - target) // 2` from the top-left."""
    height, width = t.shape[-3], t.shape[-2]
    if height is None or width is None:
        raise Unsupported("CenterCrop of images of unknown size is not exported to ONNX yet")
    if height < layer.height or width < layer.width:
        raise Unsupported(
            "CenterCrop of images smaller than the target (Keras resizes them) is not "
            "exported to ONNX yet"
        )
    top, left = (height - layer.height) // 2, (width - layer.width) // 2
    x = g.cast_if(x, t.dtype, "float32")
    starts, ends = g.ints([top, left]), g.ints([top + layer.height, left + layer.width])
    return g.node("Slice", [x, starts, ends, g.ints([t.rank - 3, t.rank - 2])])
