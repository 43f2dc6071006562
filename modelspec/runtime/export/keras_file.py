"""`modelspec export --format keras`: a Keras 3 `.keras` archive of the model.

The archive is what `keras.Model.save` writes — `metadata.json`, `config.json` (a
Functional model: one `InputLayer` per model input, then every layer with its Keras
class name = our `type` and its config = our fields, which are Keras's constructor
arguments) and `model.weights.h5` (each layer's variables where Keras's loader looks
for them: `runtime/keras_import/layout.py`). It is written with `zipfile`, `json` and
`h5py`; Keras itself is not imported, so exporting needs no Keras installation.

What does not travel:
- Host (text) layers (TextVectorization, StringLookup, IntegerLookup, Hashing) run in
  our data pipeline, not in the device model, and Keras's versions need TensorFlow. As
  for the other export formats, the `.keras` model starts where they end: it takes an
  input named after each host layer (its integer output), and their state (vocabulary)
  is written beside it as `preprocessing.json` (as the ONNX and StableHLO exports do).
- Training settings (loss, optimizer, metrics): the archive has no `compile_config`;
  a Keras user compiles the loaded model.
- `PositionEmbedding` is keras_hub's layer: it is written with keras_hub's registered
  name (`keras_hub>PositionEmbedding`), so loading needs keras_hub installed.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.compiler.graph import output_refs, split_ref
from modelspec.compiler.host_layers import device_input_types, is_host
from modelspec.errors import Diagnostic, SpecError
from modelspec.runtime.keras_import.layout import (
    LayoutError,
    container_names,
    keras_layer_order,
    keras_name,
    weight_slots,
)
from modelspec.schema.layers.nesting import nested_name

KERAS_FORMAT_VERSION = "3.15.1"
"""The Keras release whose archive format this writer follows (`metadata.json`)."""

BASE_DEFAULTS = {"trainable": True, "activity_regularizer": None, "dtype_policy": None}
"""Keras's base-`Layer` arguments at their defaults are left out of a layer's config:
a few Keras layers (SpatialDropout1D, Discretization) do not take them."""
PREPROCESSING = "preprocessing.json"
"""Beside the .keras file, for models with host (text) layers: their state."""
OUTSIDE_KERAS = {"PositionEmbedding": ("keras_hub.layers", "keras_hub>PositionEmbedding")}
"""Layer types that are Keras-team vocabulary outside `keras.layers`: (module,
registered name) Keras's loader resolves them by."""


def export_keras(session: Any, state: Any, output: Path) -> list[Path]:
    """Write `output` (a `.keras` file) for the session's model with `state`'s weights,
    and `preprocessing.json` beside it when the model has host layers; return the files written."""
    output = Path(output)
    if output.suffix != ".keras":
        raise _error(
            "-o",
            "a Keras archive must be named *.keras (keras.saving.load_model refuses others)",
            received=str(output),
            hint=f"Use -o {output.with_suffix('.keras').name}.",
        )
    config, weights = keras_archive(session.spec, _values(state, session.spec.execution))
    h5 = io.BytesIO()
    _write_weights(h5, weights)
    meta = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps(meta))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", h5.getvalue())
    written = [output]
    if session.host:
        host = output.with_name(PREPROCESSING)
        host.write_text(
            json.dumps(session.host.state(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        written.append(host)
    return written


def keras_archive(spec: Any, values: dict[tuple[str, str], np.ndarray]) -> tuple[dict, dict]:
    """(config.json content, {h5 dataset path: array}) for a checked spec whose weights
    are `values` ((layer name, param path) -> array)."""
    types = device_input_types(spec)
    inputs = tuple(types)
    policy = spec.model.dtype_policy
    layers: dict[str, dict] = {}  # keras name -> serialized layer
    parents: dict[str, list[str]] = {}
    classes: dict[str, str] = {}
    for name, t in types.items():
        layers[keras_name(name)] = _input_layer(keras_name(name), t)
        classes[keras_name(name)] = "InputLayer"
    refused = []
    for node in spec.graph.nodes:
        if is_host(node.layer):
            continue
        try:
            entry, refs = _layer_entry(spec, node, types, inputs, policy)
        except LayoutError as exc:
            refused.append((node, str(exc)))
            continue
        name = keras_name(node.name)
        layers[name] = entry
        classes[name] = node.layer.type
        parents[name] = [keras_name(_producer(r, inputs)) for r in refs]
        shape = spec.shapes[node.name]
        types.update(zip(output_refs(node.name, len(shape.outputs)), shape.outputs, strict=True))
    if refused:
        raise SpecError(
            [
                spec.error(("model", "layers", n.index), f"cannot export to Keras: {why}")
                for n, why in refused
            ]
        )
    outputs = [keras_name(_producer(r, inputs)) for r in spec.graph.outputs]
    order = keras_layer_order([keras_name(n) for n in inputs], outputs, parents)
    weights: dict[str, np.ndarray] = {}
    for name, container in zip(order, container_names(classes[n] for n in order), strict=True):
        node = _node_by_keras_name(spec, name)
        if node is None:
            continue
        for slot, info in weight_slots(node.layer, spec.shapes[node.name].params):
            if info.path in type(node.layer).untracked_state:
                continue  # in the config (see `_layer_entry`)
            weights[f"layers/{container}/{slot}"] = values[(node.name, info.path)]
    model = {
        "name": spec.name,
        "trainable": True,
        "layers": [layers[n] for n in order],
        "input_layers": _tensor_list([_history(r, inputs) for r in inputs]),
        "output_layers": _tensor_list([_history(r, inputs) for r in spec.graph.outputs]),
    }
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": model,
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": None,
    }
    _fill_untracked(spec, values, layers)
    return config, weights


def _node_by_keras_name(spec: Any, name: str):
    for node in spec.graph.nodes:
        if keras_name(node.name) == name and not is_host(node.layer):
            return node
    return None


def _fill_untracked(spec: Any, values: dict, layers: dict[str, dict]) -> None:
    """Adapted state Keras keeps in the config rather than in weights (Discretization's
    `bin_boundaries`): written into the layer's config from our variables."""
    for node in spec.graph.nodes:
        for path in type(node.layer).untracked_state:
            if (node.name, path) in values and keras_name(node.name) in layers:
                cfg = layers[keras_name(node.name)]["config"]
                cfg[path] = np.asarray(values[(node.name, path)]).tolist()


def _tensor_list(items: list[list]) -> list:
    """Keras writes a single model input/output as one `[name, 0, index]`."""
    return items[0] if len(items) == 1 else items


def _producer(ref: str, inputs: tuple[str, ...]) -> str:
    """The model input or layer that makes the tensor `ref` (`lstm.1` -> `lstm`)."""
    return ref if ref in inputs else split_ref(ref)[0]


def _history(ref: str, inputs: tuple[str, ...]) -> list:
    """Keras's `keras_history` of a tensor: [layer, node index (always 0), tensor index]."""
    if ref in inputs:
        return [keras_name(ref), 0, 0]
    base, index = split_ref(ref)
    return [keras_name(base), 0, index or 0]


def _tensor(ref: str, types: dict, inputs: tuple[str, ...]) -> dict:
    t = types[ref]
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": [None, *t.shape[1:]],
            "dtype": t.dtype,
            "keras_history": _history(ref, inputs),
        },
    }


def _input_layer(name: str, t: Any) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, *t.shape[1:]], "dtype": t.dtype, "name": name},
        "registered_name": None,
        "name": name,
        "inbound_nodes": [],
    }


def _layer_entry(
    spec: Any, node: Any, types: dict, inputs: tuple[str, ...], policy: str
) -> tuple[dict, list[str]]:
    """The serialized layer with its inbound node, and the refs it reads in the order
    Keras flattens the call's arguments."""
    layer = node.layer
    call = type(layer).call
    kwargs = {k: getattr(layer, k) for k in type(layer).call_kwargs}
    if node.kind == "single":
        refs = [node.args[0]]
        args: list = [_tensor(refs[0], types, inputs)]
    elif node.kind == "multi" or getattr(call, "keras_list", False):
        refs = list(node.refs)
        args = [[_tensor(r, types, inputs) for r in refs]]
    else:  # named: positional while the arguments are a prefix of the call's order
        given = dict(node.args)
        names = list(call.names)
        positional = names[: len(given)] == list(given)
        if positional:
            refs = [given[a] for a in names[: len(given)]]
            args = [_tensor(r, types, inputs) for r in refs]
        else:
            refs = [given[a] for a in sorted(given)]  # keras flattens kwargs by key
            args = []
            kwargs.update({a: _tensor(r, types, inputs) for a, r in given.items()})
    entry = serialize_layer(layer, keras_name(node.name), policy)
    entry["name"] = keras_name(node.name)
    entry["inbound_nodes"] = [{"args": args, "kwargs": kwargs}]
    weight_slots(layer, spec.shapes[node.name].params)  # refuse unknown nesting early
    return entry, refs


def serialize_layer(layer: Any, name: str, policy: str = "float32") -> dict:
    """One layer spec as Keras serializes a layer (`{module, class_name, config,
    registered_name}`): its fields as constructor arguments, without modelspec-only
    ones (`type`, `inputs`) and call-time ones; nested layers serialized the same way."""
    cls = type(layer)
    args = layer.model_dump(mode="json")
    skip = {"type", "name", "inputs", *cls.call_kwargs, *cls.nested_fields}
    cfg: dict[str, Any] = {"name": name}
    for key, value in args.items():
        if key in skip or (key in BASE_DEFAULTS and value == BASE_DEFAULTS[key]):
            continue
        if key == "dtype_policy":
            key = "dtype"
        cfg[key] = _keras_value(value)
    if policy != "float32" and "dtype" not in cfg:
        cfg["dtype"] = policy
    for key in cls.nested_fields:
        inner = getattr(layer, key)
        if inner is not None:
            cfg[key] = serialize_layer(inner, nested_name(inner), policy)
    module, registered = OUTSIDE_KERAS.get(layer.type, ("keras.layers", None))
    return {
        "module": module,
        "class_name": layer.type,
        "config": cfg,
        "registered_name": registered,
    }


def _keras_value(value: Any) -> Any:
    """Our `{type: X, ...}` objects (initializers, regularizers, constraints) as Keras's
    `{class_name: X, config: {...}}`."""
    if isinstance(value, dict) and "type" in value:
        return {
            "class_name": value["type"],
            "config": {k: v for k, v in value.items() if k != "type"},
        }
    return value


def _values(state: Any, execution: Any) -> dict[tuple[str, str], np.ndarray]:
    """(layer name, param path) -> array, from a TrainState's params, batch statistics
    and frozen weights (pure dicts: `layers/<name>/<path...>`; scanned block stacks
    split into their copies' layers, as Keras holds them)."""
    from modelspec.compiler.layer_stack import unstacked
    from modelspec.compiler.model import flat

    out = {}
    for tree in (state.params, state.batch_stats, state.frozen):
        for path, value in flat(unstacked(tree, execution)):
            out[(str(path[1]), "/".join(str(p) for p in path[2:]))] = np.asarray(value)
    return out


def _write_weights(target: Any, weights: dict[str, np.ndarray]) -> None:
    """`model.weights.h5`: one dataset per variable at its Keras path."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with the export extra
        raise _error(
            "--format",
            "writing a .keras file needs h5py",
            hint="pip install 'modelspec[export]'",
        ) from None
    with h5py.File(target, "w") as f:
        f.create_group("layers")
        for path, value in weights.items():
            f[path] = value


def _error(path: str, message: str, **kw: Any) -> SpecError:
    return SpecError.single(Diagnostic("<command line>", 0, 0, path, message, **kw))
