"""The layer conformance harness: one contract every layer type passes.

For a case (a layer as written in a spec + its input types) it checks:
1. the inferred output shape/dtype equals `jax.eval_shape` of the compiled layer;
2. the variables built equal the inferred ParamInfo list (paths, shapes, axes);
3. the parameter count equals Keras's (trainable and non-trainable);
4. forward outputs (values and dtype) equal Keras 3's (JAX backend) with the same weights, in inference
   and — where the layer is deterministic in training (batch statistics) — in
   training mode too, including updated moving statistics; stochastic layers
   (dropout) are checked structurally in training mode;
5. spec -> canonical dump -> spec round-trips.

Layers with state learned from data ("adapted" variables, the spec class's `adapter`)
are adapted first, Keras's layer with its `adapt` and ours with the adapter, on the
case's input; the learned states must be equal, and the outputs then are compared.

Nothing here names a layer type: how a layer is called, which of its fields Keras
takes at call time, and how it behaves in training come from its spec class
(`LayerSpec.call`, `call_kwargs`, `dropout_fields`, `inverted_dropout`,
`train_deterministic`), so a new layer type needs only its cases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel, flat, split, variables
from modelspec.compiler.penalties import build_penalties
from modelspec.schema.layers import LAYER_TYPES, LayerSpec
from modelspec.schema.layers.nesting import nested_name
from modelspec.schema.spec import Spec
from modelspec.schema.vocabulary import load_reference
from tests.conformance.keras_reference import REFERENCE

BATCH = 3


@dataclass
class Case:
    """One layer configuration. `inputs` maps input names to (shape without batch,
    dtype); `layer` is the spec mapping (its `inputs` wired to those names)."""

    id: str
    layer: dict[str, Any]
    inputs: dict[str, tuple[tuple[int | None, ...], str]]
    call: dict[str, Any] = field(default_factory=dict)
    """Extra Keras call kwargs (beyond the spec class's `call_kwargs` fields)."""
    train_deterministic: bool | None = None
    """True when training mode is deterministic and must match Keras (batch statistics).
    None: the spec class's `train_deterministic`."""
    stochastic: bool | None = None
    """True when training mode draws random numbers (dropout): structural check only.
    None: the layer's `stochastic` (a dropout rate above zero)."""
    atol: float = 1e-5
    rtol: float = 1e-5
    """Relative tolerance; half-precision (dtype policy) cases need ~1e-2 (bfloat16
    keeps 8 significant bits, float16 11)."""
    int_high: int = 10


def spec_for(case: Case) -> dict[str, Any]:
    layer = dict(case.layer)
    layer.setdefault("name", "under_test")
    if "inputs" not in layer and len(case.inputs) == 1:
        layer["inputs"] = next(iter(case.inputs))
    return {
        "modelspec": 1,
        "name": "conformance",
        "model": {
            "inputs": {n: {"shape": list(s), "dtype": d} for n, (s, d) in case.inputs.items()},
            "layers": [layer],
        },
    }


def make_inputs(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, (shape, dtype) in case.inputs.items():
        concrete = (BATCH, *(5 if d is None else d for d in shape))
        if dtype.startswith("int"):
            out[name] = rng.integers(0, case.int_high, concrete).astype(dtype)
        else:
            out[name] = rng.normal(size=concrete).astype(dtype)
    return out


def spec_class(layer: dict[str, Any]) -> type[LayerSpec]:
    return LAYER_TYPES[layer["type"]]


def keras_layer(layer: dict[str, Any], name: str | None = None) -> keras.layers.Layer:
    """The Keras layer of a spec mapping: its fields are the constructor arguments, except
    those Keras takes at call time (the spec class's `call_kwargs`). Nested layer specs
    (the spec class's `nested_fields`) become Keras layers named as the spec names them,
    so their weight paths are the spec's."""
    cls_spec = spec_class(layer)
    skip = ("type", "name", "inputs", *cls_spec.call_kwargs)
    args = {k: v for k, v in layer.items() if k not in skip}
    for k in cls_spec.nested_fields:
        if isinstance(args.get(k), dict):
            inner = spec_class(args[k]).model_validate(args[k])
            args[k] = keras_layer(args[k], name=nested_name(inner))
    if name is not None:
        args["name"] = name
    if "dtype_policy" in args:  # Keras's constructor names the policy `dtype`
        args["dtype"] = args.pop("dtype_policy")
    for k, v in list(args.items()):
        if isinstance(v, dict) and "type" in v:  # initializer config
            cfg = {a: b for a, b in v.items() if a != "type"}
            args[k] = {"class_name": v["type"], "config": cfg}
    cls = getattr(keras.layers, layer["type"], None) or REFERENCE[layer["type"]]
    return cls(**args)


def keras_call_kwargs(layer: LayerSpec) -> dict[str, Any]:
    """The spec fields Keras takes as call arguments, with their values."""
    return {k: getattr(layer, k) for k in type(layer).call_kwargs}


def keras_call(case: Case, klayer, x: dict[str, np.ndarray], training: bool):
    """Call the Keras layer the way the spec class's call kind binds the case's inputs."""
    layer = spec_class(case.layer).model_validate(case.layer)
    given = case.layer.get("inputs", next(iter(case.inputs)))
    _, args, problem = layer.call.bind(layer.type, given)
    assert problem is None, f"{case.id}: {problem}"
    kw = {**keras_call_kwargs(layer), **case.call}
    return layer.call.invoke(klayer, args, x, training=training, **kw)


def run_case(case: Case) -> None:
    rng = np.random.default_rng(0)
    spec = load(spec_for(case))
    an = load(spec)
    node = an.graph.nodes[0]
    inferred = an.shapes[node.name]
    stochastic = node.layer.stochastic if case.stochastic is None else case.stochastic
    train_deterministic = (
        type(node.layer).train_deterministic
        if case.train_deterministic is None
        else case.train_deterministic
    )
    model = CompiledModel(spec, seed=0)
    x = make_inputs(case, rng)

    # 1. inferred shape == jax.eval_shape, for every output (`under_test.0`, ... of a
    # multi-output layer: the model's outputs are all of them)
    refs = an.graph.outputs
    out = jax.eval_shape(lambda m, inp: m(inp), model, {k: jnp.asarray(v) for k, v in x.items()})
    for ref, typ in zip(refs, inferred.outputs, strict=True):
        got = out[ref]
        want = tuple(BATCH if i == 0 else (5 if d is None else d) for i, d in enumerate(typ.shape))
        assert got.shape == want, f"{case.id}: {ref} eval_shape {got.shape} != inferred {want}"
        assert str(got.dtype) == typ.dtype, f"{case.id}: {ref} dtype {got.dtype}"

    # 2. built variables == ParamInfo
    built = {
        path.split("/", 2)[2]: var
        for path, var in variables(model).items()
        if not path.startswith("rngs/")
    }
    state = split(model)
    declared = {p.path: p for p in inferred.params}
    assert set(built) == set(declared), f"{case.id}: built {sorted(built)} vs {sorted(declared)}"
    for path, info in declared.items():
        var = built[path]
        assert tuple(var.shape) == info.shape, f"{case.id}: {path} shape"
        assert var.get_metadata()["logical_axes"] == info.axes, f"{case.id}: {path} axes"

    # 3. Keras parameter counts
    klayer = keras_layer(case.layer)
    adapted = _adapt_both(case, node.layer, declared, klayer, x)
    keras_call(case, klayer, x, training=False)
    kvars = {v.path: v for v in klayer.weights}
    untracked = sum(declared[p].size for p in type(node.layer).untracked_state if p in declared)
    assert inferred.trainable_count == sum(int(np.prod(v.shape)) for v in klayer.trainable_weights)
    assert inferred.non_trainable_count - untracked == sum(
        int(np.prod(v.shape)) for v in klayer.non_trainable_weights
    )

    # 4. same weights (random, so biases and statistics matter) -> same outputs; adapted
    # state is what both adapted from the same data (checked equal in `_adapt_both`)
    values = dict(adapted)
    for path, info in declared.items():
        if info.collection == "adapted":
            continue
        matches = [k for k in kvars if k.endswith("/" + path)]
        assert len(matches) == 1, f"{case.id}: Keras weight for {path}: {matches} of {list(kvars)}"
        value = rng.normal(size=info.shape).astype("float32")
        if "variance" in path:
            value = np.abs(value) + 0.5
        kvars[matches[0]].assign(value)
        values[path] = value
    new_state = _assign(state, values)
    inputs = {k: jnp.asarray(v) for k, v in x.items()}
    for training in (False, True):
        outs, after = new_state.apply(inputs, training=training)
        ours_all = [np.asarray(outs[r]) for r in refs]
        if training and stochastic:
            refs_all = _tensors(keras_call(case, klayer, x, training=False))
            for ours, ref in zip(ours_all, refs_all, strict=True):
                _structural_dropout(case, ours, ref)
            continue
        if training and not train_deterministic:
            continue
        refs_all = _tensors(keras_call(case, klayer, x, training=training))
        assert len(refs_all) == len(ours_all), f"{case.id}: Keras returns {len(refs_all)}"
        for name, ours, ref in zip(refs, ours_all, refs_all, strict=True):
            assert ours.dtype == ref.dtype, f"{case.id}: dtype {ours.dtype}, Keras {ref.dtype}"
            np.testing.assert_allclose(
                _wide(ours),
                _wide(ref),
                atol=case.atol,
                rtol=case.rtol,
                err_msg=f"{case.id} {name} training={training}",
            )
        if training:
            for path, value in flat(after.batch_stats):
                short = "/".join(str(p) for p in path[2:])
                match = next(k for k in kvars if k.endswith("/" + short))
                np.testing.assert_allclose(
                    np.asarray(value),
                    np.asarray(kvars[match].value),
                    atol=case.atol,
                    rtol=case.rtol,
                    err_msg=f"{case.id} {short}",
                )

    # 4b. regularization penalties (weights and activity) == Keras's `layer.losses`
    _check_penalties(case, an, new_state, inputs, klayer, x)

    # 5. canonical dump round-trip
    dumped = spec.dump()
    again = load(copy.deepcopy(dumped))
    assert again.dump() == dumped
    assert Spec.model_validate(dumped) == Spec.model_validate(again.dump())


def _tensors(result: Any) -> list[np.ndarray]:
    """Keras's result as a list of arrays: one, or each of a multi-output layer's."""
    items = result if isinstance(result, list | tuple) else [result]
    return [np.asarray(r) for r in items]


def _wide(x: np.ndarray) -> np.ndarray:
    """Half-precision arrays as float32, so numpy's comparisons work on them."""
    return x.astype(np.float32) if x.dtype.name in ("bfloat16", "float16") else x


def _assign(state, values: dict[str, np.ndarray]):
    """Write `values` (by layer-relative path) into the pure state dicts, in place."""
    for coll in (state.params, state.batch_stats, state.frozen):
        for path, _ in flat(coll):
            node = coll
            for p in path[:-1]:
                node = node[p]
            key = "/".join(str(p) for p in path[2:])
            if key in values:  # adapted variables no adapter fills keep their value
                node[path[-1]] = jnp.asarray(values[key])
    return state


def _keras_adapt(klayer, data: np.ndarray) -> None:
    """Keras's `adapt(data)` on an array. Where `adapt` itself needs TensorFlow only to
    recognise a `tf.data.Dataset` (Discretization), Keras's stateful-preprocessing
    protocol that `adapt` runs for arrays is called directly."""
    try:
        klayer.adapt(data)
    except ImportError:
        klayer.reset_state()
        klayer.update_state(data)
        klayer.finalize_state()


def _adapt_both(case: Case, layer: LayerSpec, declared, klayer, x) -> dict[str, np.ndarray]:
    """For a layer with "adapted" variables: adapt Keras's layer and ours (the spec
    class's `adapter`) on the case's input, check the states are equal (Keras's weight,
    or its attribute for `untracked_state`), and return ours by path."""
    if not any(info.collection == "adapted" for info in declared.values()):
        return {}
    (data,) = x.values()
    _keras_adapt(klayer, data)
    ours = load_reference(type(layer).adapter)(layer, data)
    kvars = {v.path: v for v in klayer.weights}
    for path, value in ours.items():
        assert declared[path].collection == "adapted", f"{case.id}: {path} is not adapted"
        assert value.shape == declared[path].shape, f"{case.id}: adapted {path} shape"
        if path in type(layer).untracked_state:
            theirs = np.asarray(getattr(klayer, path), np.float32)
        else:
            (match,) = [k for k in kvars if k.endswith("/" + path)]
            theirs = np.asarray(kvars[match].value)
        np.testing.assert_allclose(
            value, theirs, rtol=1e-6, atol=1e-6, err_msg=f"{case.id} adapted {path}"
        )
    return ours


def _structural_dropout(case: Case, ours: np.ndarray, reference: np.ndarray) -> None:
    """Training-mode dropout: each element is 0 or the inference output / (1 - rate)
    for layers whose spec class says `inverted_dropout`; finite outputs for the rest."""
    cls = spec_class(case.layer)
    if not cls.inverted_dropout:
        assert np.all(np.isfinite(ours)), case.id
        return
    rate = getattr(cls.model_validate(case.layer), cls.dropout_fields[0])
    scaled = reference / (1.0 - rate)
    ok = np.isclose(ours, 0.0, atol=1e-6) | np.isclose(ours, scaled, atol=1e-5, rtol=1e-5)
    assert ok.all(), f"{case.id}: dropout output not in {{0, x/(1-rate)}}"
    dropped = np.isclose(ours, 0.0, atol=1e-6) & ~np.isclose(scaled, 0.0, atol=1e-6)
    assert 0 < dropped.mean() < 1 or rate == 0, f"{case.id}: drop fraction {dropped.mean()}"


def _check_penalties(case: Case, an, state, inputs, klayer, x) -> None:
    """Our penalties for the layer (its weight regularizers and activity regularizer, in
    inference mode) sum to Keras's `layer.losses` after an inference call."""
    penalties = build_penalties(an)
    if not penalties.regularized:
        return
    values, _ = state.apply(inputs, training=False, taps=penalties.taps)
    ours = float(penalties.loss(state.params, values, None))
    keras_call(case, klayer, x, training=False)  # Keras clears and re-records its losses
    theirs = float(sum(np.asarray(loss, np.float64) for loss in klayer.losses))
    assert klayer.losses, f"{case.id}: Keras recorded no penalty"
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, err_msg=f"{case.id} penalties")
