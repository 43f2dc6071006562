"""Every vocabulary is one registry: the union, the name tables, the JSON Schema and the
per-type facts (class variables) all come from it, and every runtime implementation a
spec class names exists. A new type that forgets one of its facts fails here."""

from __future__ import annotations

import typing

import jax
import jax.numpy as jnp
import pytest

from modelspec.compiler.jsonschema import spec_json_schema
from modelspec.runtime.optim.optimizers import build_optimizer
from modelspec.schema import callbacks, data, layer_args, losses, metrics, optimizers, schedules
from modelspec.schema.vocabulary import load_reference, type_tag

FAMILIES = {
    "loss": (losses.LossSpec, losses.AnyLossSpec),
    "metric": (metrics.MetricSpec, metrics.AnyMetricSpec),
    "optimizer": (optimizers.OptimizerSpec, optimizers.Optimizer),
    "schedule": (schedules.ScheduleSpec, schedules.Schedule),
    "callback": (callbacks.CallbackSpec, callbacks.Callback),
    "source": (data.SourceSpec, data.Source),
    "initializer": (layer_args.InitializerSpec, layer_args.InitializerConfig),
}


def _members(union) -> set[type]:
    inner = typing.get_args(union)[0]
    return set(typing.get_args(inner)) or {inner}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_union_is_the_registry(family):
    root, union = FAMILIES[family]
    assert root.registry, family
    assert _members(union) == set(root.registry.values())
    for tag, cls in root.registry.items():
        assert type_tag(cls) == tag and issubclass(cls, root)


def test_name_tables_are_derived_from_the_registries():
    assert losses.LOSS_TYPES is losses.LossSpec.registry
    assert metrics.METRIC_TYPES is metrics.MetricSpec.registry
    assert optimizers.OPTIMIZER_TYPES is optimizers.OptimizerSpec.registry
    assert schedules.SCHEDULE_TYPES is schedules.ScheduleSpec.registry
    assert callbacks.CALLBACK_TYPES is callbacks.CallbackSpec.registry
    assert data.SOURCE_TYPES == tuple(data.SourceSpec.registry)
    for cls in losses.LOSS_TYPES.values():
        assert all(losses.LOSS_ALIASES[a] == cls.__name__ for a in cls.aliases)
    for tag, cls in metrics.METRIC_TYPES.items():
        assert all(metrics.METRIC_ALIASES[a] == tag for a in cls.aliases)


@pytest.mark.parametrize("family", ["loss", "metric"])
def test_every_field_is_documented_in_json_schema(family):
    for cls in FAMILIES[family][0].registry.values():
        props = cls.model_json_schema()["properties"]
        missing = [k for k, v in props.items() if not v.get("description")]
        assert not missing, f"{cls.__name__}: {missing}"


def test_every_registered_type_is_in_the_json_schema():
    defs = spec_json_schema()["$defs"].values()
    tags = {d.get("properties", {}).get("type", {}).get("const") for d in defs}
    for family, (root, _) in FAMILIES.items():
        missing = set(root.registry) - tags
        assert not missing, f"{family} types missing from the JSON Schema: {missing}"


def test_every_loss_declares_its_facts():
    kinds = typing.get_args(losses.LabelKind)
    for cls in losses.LOSS_TYPES.values():
        assert isinstance(cls.keras_name, str) and cls.keras_name, cls
        assert cls.label_kind in kinds, cls


@pytest.mark.parametrize(
    ("root", "attr"),
    [
        (optimizers.OptimizerSpec, "update_rule"),
        (schedules.ScheduleSpec, "builder"),
        (data.SourceSpec, "reader"),
        (callbacks.CallbackSpec, "runtime"),
    ],
    ids=["optimizer", "schedule", "source", "callback"],
)
def test_named_implementations_exist(root, attr):
    for cls in root.registry.values():
        ref = getattr(cls, attr)
        if ref is None:  # a callback the step loop implements itself
            assert cls.terminates_on_nan, cls
            continue
        assert callable(load_reference(ref)), f"{cls.__name__}.{attr} = {ref!r}"


def test_load_reference_refuses_a_malformed_reference():
    with pytest.raises(ValueError, match="module:name"):
        load_reference("modelspec.runtime.callbacks.EarlyStoppingCallback")


def _param_shaped_slots(spec, params) -> int:
    """Arrays in the optimizer state with the shape of some parameter, per parameter."""
    state = build_optimizer(spec).init(params)
    shapes = [p.shape for p in jax.tree.leaves(params)]
    leaves = [x for x in jax.tree.leaves(state) if x.shape in shapes and x.shape != ()]
    return len(leaves) // len(shapes)


VARIANTS = [
    {"type": "SGD"},
    {"type": "SGD", "momentum": 0.9},
    {"type": "Adam"},
    {"type": "Adam", "amsgrad": True},
    {"type": "AdamW", "use_ema": True},
    {"type": "RMSprop"},
    {"type": "RMSprop", "momentum": 0.5, "centered": True},
    {"type": "Adagrad", "gradient_accumulation_steps": 2},
    {"type": "Adadelta"},
    {"type": "Adamax"},
    {"type": "Nadam"},
    {"type": "Lion"},
    {"type": "Lamb"},
]


@pytest.mark.parametrize("raw", VARIANTS, ids=lambda r: "-".join(map(str, r.values())))
def test_state_slots_count_the_arrays_the_optimizer_keeps(raw):
    """The memory estimate and the sharding plan read `state_slots()`; it must be what
    the runtime allocates (Adafactor's factored moments are smaller than a slot, and are
    estimated as one)."""
    spec = optimizers.OptimizerSpec.registry[raw["type"]].model_validate(raw)
    params = {"w": jnp.zeros((3, 5)), "b": jnp.zeros((7,))}
    assert spec.state_slots() == _param_shaped_slots(spec, params)


def test_state_slot_variants_cover_every_optimizer():
    assert {v["type"] for v in VARIANTS} | {"Adafactor"} == set(optimizers.OPTIMIZER_TYPES)
