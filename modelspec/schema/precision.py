"""Keras 3 dtype policies (`keras.DTypePolicy`), in pure Python.

A policy names two dtypes: variables are stored in the *variable* dtype, and a layer
computes in the *compute* dtype. `mixed_bfloat16` and `mixed_float16` keep float32
variables (so optimizer updates and checkpoints stay float32) and compute in the half
type; under them Keras, before calling a layer, casts its float inputs to the compute
dtype and reads its float variables cast to it ("autocast"), and the layer's output
comes out in the compute dtype. Two class variables of a layer's spec class state where
Keras deviates (`LayerSpec.autocast`, `LayerSpec.float32_compute`); `PolicyRule` is what
one layer gets, shared by shape inference (`compiler/infer.py`) and the built model
(`compiler/autocast.py`), so `check`/`summary` dtypes equal what runs.

Pure half-precision policies (`bfloat16`, `float16`: variables stored in the half type)
are refused with a positioned error rather than run with float32 variables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from modelspec.schema.tensors import FLOAT_DTYPES, LayerShape, TensorType

POLICIES: dict[str, tuple[str, str]] = {
    "float32": ("float32", "float32"),
    "mixed_bfloat16": ("bfloat16", "float32"),
    "mixed_float16": ("float16", "float32"),
}
"""Policy name -> (compute dtype, variable dtype), as `DTypePolicy._parse_name`."""


def _refuse_unsupported(value: Any) -> Any:
    """Keras also accepts a plain float dtype as a policy; those store variables in that
    dtype, which modelspec does not do, so say what to write instead."""
    if value in ("bfloat16", "float16"):
        raise ValueError(
            f"the `{value}` dtype policy (variables stored in {value}) is not supported; "
            f"use `mixed_{value}` (float32 variables, {value} computation)"
        )
    if value == "float64":
        raise ValueError("the `float64` dtype policy is not supported; use `float32`")
    return value


DTypePolicyName = Annotated[
    Literal["float32", "mixed_bfloat16", "mixed_float16"],
    BeforeValidator(_refuse_unsupported),
]
"""A Keras dtype policy name."""


@dataclass(frozen=True)
class PolicyRule:
    """What a dtype policy does around one layer's call (only for non-float32 policies;
    under float32 each layer applies Keras's float32 policy itself).

    1. `autocast`: float inputs are cast to `compute` (Keras `Layer.autocast`; False for
       LayerNormalization, GroupNormalization: inputs reach them as they are);
    2. `float32_compute`: the layer then runs in float32 — float inputs upcast, its
       variables read as float32 (Keras's normalizations, whose variables are never
       autocast); otherwise its float variables are read cast to `compute`;
    3. float outputs are cast to `compute`.
    """

    policy: str
    compute: str
    autocast: bool
    float32_compute: bool

    def layer_input(self, t: TensorType) -> TensorType:
        """The type the layer itself receives for a graph tensor of type `t`."""
        if not t.is_float:
            return t
        dtype = self.compute if self.autocast else t.dtype
        return TensorType(t.shape, "float32" if self.float32_compute else dtype)

    def output(self, t: TensorType) -> TensorType:
        """The graph type of the layer's output `t` (float outputs in the compute dtype)."""
        return TensorType(t.shape, self.compute) if t.dtype in FLOAT_DTYPES else t


def layer_policy(layer: Any, model: Any) -> str:
    """The policy of a layer: its own `dtype_policy`, else the model's. (The loader's
    partial re-check of an invalid spec passes stand-ins without the fields: float32.)"""
    return getattr(layer, "dtype_policy", None) or getattr(model, "dtype_policy", "float32")


def policy_rule(layer: Any, model: Any) -> PolicyRule | None:
    """The rule around `layer`'s call, or None under the float32 policy."""
    policy = layer_policy(layer, model)
    if policy == "float32":
        return None
    cls = type(layer)
    return PolicyRule(policy, POLICIES[policy][0], cls.autocast, cls.float32_compute)


def map_inputs(rule: PolicyRule, inputs: Any) -> Any:
    """`layer_input` over a call kind's inputs (one type, a list, or a dict)."""
    if isinstance(inputs, TensorType):
        return rule.layer_input(inputs)
    if isinstance(inputs, list):
        return [rule.layer_input(t) for t in inputs]
    return {k: rule.layer_input(t) for k, t in inputs.items()}


def infer_with_policy(layer: Any, model: Any, inputs: Any) -> LayerShape:
    """`layer.infer` under its dtype policy: the layer sees its inputs as the policy
    hands them over, and its float outputs are in the compute dtype (the variables stay
    float32: ParamInfo is unchanged)."""
    rule = policy_rule(layer, model)
    if rule is None:
        return layer.infer(inputs)
    result = layer.infer(map_inputs(rule, inputs))
    return dataclasses.replace(
        result,
        output=rule.output(result.output),
        extra_outputs=tuple(rule.output(t) for t in result.extra_outputs),
    )


__all__ = [
    "POLICIES",
    "DTypePolicyName",
    "PolicyRule",
    "infer_with_policy",
    "layer_policy",
    "map_inputs",
    "policy_rule",
]
