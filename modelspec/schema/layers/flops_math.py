"""Forward FLOPs per example from inferred shapes: the counting convention and the
helpers the family modules' `flops` methods share.

A helper of the layer families (not a family: it defines no layer type). Pure Python.

The convention (that of keras-flops and fvcore, made explicit so figures compare):

- per example: the batch axis is left out; the forward pass in inference mode (dropout
  and the random augmentations are the identity, batch normalization uses its moving
  statistics);
- matmul-like work (Dense, convolutions, attention's projections and score products,
  recurrent kernels) counts 2 FLOPs per multiply-accumulate;
- a bias add and a fused `activation` count 1 FLOP per output element each;
- element-wise layers count `flops_per_element` FLOPs per output element (1 by
  default; ~5 for normalizations: mean, variance, subtract, divide, scale-and-shift);
- layers that only move data (reshape, crop, pad, lookups, concatenation) count 0;
- a window pooling counts one FLOP per element of each window it reads; a global
  pooling one per input element;
- unknown: None when a size other than the batch axis is unknown (a variable number
  of timesteps), since no number would be right.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from modelspec.schema.tensors import LayerShape, TensorType

Flops = int | None
"""A FLOP count, or None where a non-batch size is unknown."""


def per_example(t: TensorType) -> Flops:
    """Elements of one example of `t` (every axis but the batch axis)."""
    dims = t.shape[1:]
    return None if None in dims else math.prod(dims)


def rows(t: TensorType) -> Flops:
    """Positions of one example of `t`: every axis but the batch and the last one."""
    dims = t.shape[1:-1]
    return None if None in dims else math.prod(dims)


def total(terms: Iterable[Flops]) -> Flops:
    """The sum, or None if any term is unknown."""
    terms = list(terms)
    return None if any(t is None for t in terms) else sum(terms)  # type: ignore[arg-type]


def times(n: Flops, factor: Flops) -> Flops:
    """`n * factor`, None if either is unknown."""
    return None if n is None or factor is None else n * factor


def affine(macs: Flops, out: TensorType, use_bias: bool, activation: str | None) -> Flops:
    """A matmul-like layer: 2 per multiply-accumulate, plus 1 per output element for
    the bias and 1 for a fused activation other than `linear`."""
    extra = int(use_bias) + int(activation not in (None, "linear"))
    return total([times(macs, 2), times(per_example(out), extra)])


def param_size(shape: LayerShape, suffix: str) -> int:
    """Total size of the layer's variables whose path ends with `suffix` (e.g. every
    `kernel`: a separable convolution's depthwise and pointwise ones)."""
    return sum(p.size for p in shape.params if p.path.endswith(suffix))


def kernel_macs(shape: LayerShape, positions: Flops) -> Flops:
    """Multiply-accumulates of kernels applied at `positions` places: every weight of
    each `*kernel` variable is used once per place (dense, convolution, projection)."""
    return times(param_size(shape, "kernel"), positions)


def projection(shape: LayerShape, name: str, t: TensorType) -> Flops:
    """An attention projection `name` (its `name/kernel` and optional `name/bias`)
    applied at every position of `t`: 2 per kernel weight, 1 per bias element."""
    weights = 2 * param_size(shape, f"{name}/kernel") + param_size(shape, f"{name}/bias")
    return times(weights, rows(t))
