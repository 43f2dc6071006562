"""A Keras 3 model config (config.json, as data) -> a spec mapping, and where each
layer's weights are in the weights file.

Sequential and Functional models (several inputs and outputs; multi-output layers such
as `LSTM(return_state=True)`) map to `model.inputs`/`layers`/`outputs`. A nested
Sequential or Functional model is flattened into the outer one, its layers named
`<model>/<layer>`. A layer's config keys are its constructor arguments, which are our
field names; Keras-only keys are handled (`name`; `trainable: false` kept; a `dtype`
policy kept when mixed; keys left at their "off" value — null or false, a `seed` —
dropped). Everything that cannot be imported is collected, with the layer's name, and
reported at once. Nothing is executed: `Lambda` layers and classes registered outside
Keras are refused by name, never deserialized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from modelspec.runtime.keras_import.layout import (
    container_names,
    snake_case,
    spec_name,
)
from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.layers.nesting import auto_name

MODEL_CLASSES = ("Functional", "Sequential", "Model")
OUTSIDE_KERAS = {"keras_hub>PositionEmbedding": "PositionEmbedding"}
"""Registered names of Keras-team layers outside `keras.layers` that we implement."""
DROPPED_KEYS = {"seed", "renorm_momentum", "build_input_shape"}
"""Keras-only keys dropped whatever their value (a `seed` fixes Keras's own random
stream, which ours never equals; `renorm_momentum` matters only with `renorm`)."""
KERAS_ONLY_DEFAULTS = {"data_format": "channels_last"}
"""Keras-only keys accepted at the value modelspec implements (it is channels-last)."""
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-/]")


@dataclass
class Imported:
    """The spec mapping, the weights file group of each layer with weights (our layer
    name -> `layers/dense_1`), and every problem found (layer name, message)."""

    spec: dict[str, Any]
    groups: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Ctx:
    def __init__(self) -> None:
        self.inputs: dict[str, dict] = {}
        self.layers: list[dict] = []
        self.groups: dict[str, str] = {}
        self.problems: list[str] = []
        self.outputs_of: dict[str, int] = {}  # our layer name -> number of outputs
        self.refused: set[str] = set()  # Keras layers not imported (already reported)

    def ref(self, name: str, index: int) -> str:
        """Our reference to tensor `index` of the layer or input called `name` (ours)."""
        if self.outputs_of.get(name, 1) > 1:
            return f"{name}.{index}"
        return name


def config_to_spec(config: dict[str, Any], name: str) -> Imported:
    """Map a `.keras` archive's config.json (a serialized model) to a spec mapping."""
    ctx = _Ctx()
    cls = config.get("class_name")
    if cls not in MODEL_CLASSES or not str(config.get("module", "keras")).startswith("keras"):
        ctx.problems.append(
            f"the archive holds a {cls!r} model (module {config.get('module')!r}): only "
            "Sequential and Functional models are imported (a subclassed model's call() "
            "is Python code, which is never run)"
        )
        return Imported({}, problems=ctx.problems)
    outputs = _model(ctx, config, "", [], "")
    spec: dict[str, Any] = {
        "modelspec": 1,
        "name": _clean(name) or "model",
        "model": {"inputs": ctx.inputs, "layers": ctx.layers, "outputs": outputs},
    }
    if not ctx.layers:
        ctx.problems.append("the model has no layers")
    _tidy(spec["model"])
    return Imported(spec, ctx.groups, ctx.problems)


def _tidy(model: dict) -> None:
    """Leave out what the spec would say by default: `inputs` naming the previous layer
    (or the only model input, for the first), `outputs: [last layer]`, and a
    Bidirectional's `backward_layer` when it is Keras's own reversed copy of `layer`
    (nested names at Keras's defaults too)."""
    previous = next(iter(model["inputs"])) if len(model["inputs"]) == 1 else None
    for layer in model["layers"]:
        if previous is not None and layer.get("inputs") == previous:
            del layer["inputs"]
        previous = layer["name"]
        if layer["type"] == "Bidirectional":
            _tidy_bidirectional(layer)
    if model["outputs"] == [model["layers"][-1]["name"]] if model["layers"] else False:
        del model["outputs"]


def _tidy_bidirectional(layer: dict) -> None:
    forward, backward = layer.get("layer") or {}, layer.get("backward_layer")
    base = str(forward.get("name", "")).removeprefix("forward_")
    if isinstance(backward, dict):
        same = {k: v for k, v in backward.items() if k not in ("name", "go_backwards")}
        if (
            backward.get("go_backwards")
            and same == {k: v for k, v in forward.items() if k != "name"}
            and backward.get("name") == f"backward_{base}"
        ):
            del layer["backward_layer"]
    if "name" in forward:
        forward["name"] = base
        if base == auto_name(forward["type"]):
            del forward["name"]


def _clean(name: Any) -> str:
    text = _NAME_OK.sub("_", spec_name(str(name)))
    return text if re.match(r"^[A-Za-z_]", text) else f"_{text}"


def _model(ctx: _Ctx, config: dict, prefix: str, feeds: list[str], group: str) -> list[str]:
    """Add one (possibly nested) model's layers; return its output refs. `feeds`: the
    refs a nested model's inputs take (empty for the outer model: its inputs become
    model inputs); `group`: its weights-file group ("" for the outer model)."""
    cfg = config.get("config", {})
    entries = cfg.get("layers", [])
    if config.get("class_name") == "Sequential":
        return _sequential(ctx, cfg, entries, prefix, feeds, group)
    names = container_names(e.get("class_name", "") for e in entries)
    tensors: dict[str, list[str]] = {}  # keras layer name -> our refs of its outputs
    input_layers = _triples(cfg.get("input_layers", []))
    feed_of = dict(zip((t[0] for t in input_layers), feeds, strict=False))
    for entry, container in zip(entries, names, strict=True):
        kname = entry.get("name") or entry.get("config", {}).get("name", "")
        ours = prefix + _clean(kname)
        where = f"{group}layers/{container}"
        if entry.get("class_name") == "InputLayer":
            if feeds:
                tensors[kname] = [feed_of.get(kname, "")]
            else:
                tensors[kname] = [_input(ctx, ours, entry)]
            continue
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) != 1:
            ctx.problems.append(
                f"layer '{kname}' is called {len(nodes)} times: shared layers are not "
                "supported (each layer of a spec is called once)"
            )
            continue
        args, kwargs = _node_tensors(ctx, kname, nodes[0], tensors)
        if entry.get("class_name") in MODEL_CLASSES:
            inner_feeds = [r for r in args if isinstance(r, str)]
            tensors[kname] = _model(ctx, entry, ours + "/", inner_feeds, where + "/")
            continue
        tensors[kname] = _layer(ctx, entry, ours, args, kwargs, where)
        if not tensors[kname]:
            ctx.refused.add(kname)
    if not feeds:  # the model's inputs in Keras's order (`model.inputs`)
        first = [tensors[t[0]][0] for t in input_layers if tensors.get(t[0])]
        ctx.inputs = {n: ctx.inputs[n] for n in [*first, *ctx.inputs] if n in ctx.inputs}
    out = []
    for lname, _node, index in _triples(cfg.get("output_layers", [])):
        refs = tensors.get(lname)
        if refs is not None and index < len(refs):
            out.append(refs[index])
    return out


def _sequential(ctx, cfg, entries, prefix, feeds, group) -> list[str]:
    names = container_names(e.get("class_name", "") for e in entries)
    current = feeds[0] if feeds else None
    for entry, container in zip(entries, names, strict=True):
        kname = entry.get("config", {}).get("name", "")
        ours = prefix + _clean(kname)
        where = f"{group}layers/{container}"
        if entry.get("class_name") == "InputLayer":
            current = current or _input(ctx, ours, entry)
            continue
        if current is None:
            shape = cfg.get("build_input_shape") or (entry.get("build_config") or {}).get(
                "input_shape"
            )
            if not shape:
                ctx.problems.append("a Sequential model without an input shape (never built)")
                return []
            current = _input(ctx, prefix + "input", {"config": {"batch_shape": shape}})
        if entry.get("class_name") in MODEL_CLASSES:
            (current, *_) = _model(ctx, entry, ours + "/", [current], where + "/") or [current]
            continue
        refs = _layer(ctx, entry, ours, [current], {}, where)
        current = refs[0] if refs else current
    return [current] if current else []


def _input(ctx: _Ctx, name: str, entry: dict) -> str:
    cfg = entry.get("config", {})
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape") or [None]
    ctx.inputs[name] = {"shape": list(shape[1:]), "dtype": cfg.get("dtype") or "float32"}
    return name


def _triples(value: Any) -> list[tuple[str, int, int]]:
    """`input_layers`/`output_layers`: one `[name, node, index]` or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [tuple(v) for v in value if isinstance(v, list) and len(v) == 3]


def _node_tensors(ctx, kname, node, tensors) -> tuple[list, dict]:
    """The call's arguments with keras tensors replaced by our refs."""

    def conv(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            lname, _n, index = value["config"]["keras_history"]
            refs = tensors.get(lname)
            if lname in ctx.refused:
                return ""
            if refs is None or index >= len(refs):
                ctx.problems.append(f"layer '{kname}' reads '{lname}', which was not imported")
                return ""
            return refs[index]
        if isinstance(value, list):
            return [conv(v) for v in value]
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        return value

    if isinstance(node, list):  # the legacy form: [[name, node, index, kwargs], ...]
        refs = [
            conv({"class_name": "__keras_tensor__", "config": {"keras_history": n[:3]}})
            for n in node
        ]
        return [refs[0] if len(refs) == 1 else refs], {}
    return conv(node.get("args", [])), conv(node.get("kwargs", {}))


def _layer(ctx: _Ctx, entry: dict, ours: str, args: list, kwargs: dict, where: str) -> list[str]:
    """Map one layer and add it; return the refs of its outputs ([] if refused)."""
    layer = map_layer(ctx, entry, ours)
    if layer is None:
        return []
    cls = LAYER_TYPES[layer["type"]]
    call = cls.call
    for key, value in kwargs.items():
        if key in ("training",) or (key == "mask" and value is None):
            continue
        if key in cls.call_kwargs:
            layer[key] = value
        elif call.kind == "named" and key in call.names and isinstance(value, str):
            continue  # a tensor argument, bound below
        else:
            ctx.problems.append(f"layer '{ours}': call argument `{key}` is not supported")
            return []
    if call.kind == "single":
        first = args[0] if args else None
        layer["inputs"] = first[0] if isinstance(first, list) and len(first) == 1 else first
    elif call.kind == "multi":
        layer["inputs"] = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    else:
        if getattr(call, "keras_list", False) and args and isinstance(args[0], list):
            bound = dict(zip(call.names, args[0], strict=False))
        else:
            bound = dict(zip(call.names, args, strict=False))
        bound.update({k: v for k, v in kwargs.items() if k in call.names and isinstance(v, str)})
        layer["inputs"] = bound
    try:
        labels = cls.model_validate(layer).output_labels
    except Exception:  # noqa: BLE001 - reported when the whole spec is validated
        labels = ("output",)
    ctx.outputs_of[ours] = len(labels)
    ctx.layers.append(layer)
    ctx.groups[ours] = where
    return [ctx.ref(ours, i) for i in range(len(labels))]


def map_layer(ctx: _Ctx, entry: dict, ours: str) -> dict | None:
    """A serialized Keras layer as our layer mapping (without `inputs`), or None after
    recording why it cannot be imported."""
    cls_name = entry.get("class_name")
    module = str(entry.get("module") or "")
    registered = entry.get("registered_name")
    if cls_name in CODE_LAYERS:
        ctx.problems.append(
            f"layer '{ours}' is a {cls_name} layer: its Python function is code, which "
            "modelspec never loads or runs (nothing from the archive was executed)"
        )
        return None
    if registered in OUTSIDE_KERAS:
        cls_name = OUTSIDE_KERAS[registered]
    elif registered not in (None, cls_name) or (module and not module.startswith("keras")):
        ctx.problems.append(
            f"layer '{ours}' is the custom class {registered or cls_name!r} (module "
            f"{module!r}): custom objects are code, which modelspec never loads or runs"
        )
        return None
    spec_cls = LAYER_TYPES.get(cls_name)
    if spec_cls is None:
        ctx.problems.append(f"layer '{ours}': Keras layer type {cls_name} is not supported")
        return None
    if spec_cls.host:
        ctx.problems.append(
            f"layer '{ours}': {cls_name} (a text layer, whose vocabulary Keras keeps in the "
            "archive's assets) is not imported yet"
        )
        return None
    out: dict[str, Any] = {"type": cls_name, "name": ours}
    fields = spec_cls.model_fields
    bad = []
    for key, value in (entry.get("config") or {}).items():
        if key == "name":
            continue
        if key == "trainable":
            if value is False:
                out["trainable"] = False
        elif key == "dtype":
            policy = _policy(value)
            if policy not in (None, "float32"):
                out["dtype_policy"] = policy
        elif key in spec_cls.nested_fields:
            if value is not None:
                inner = map_layer(ctx, value, (value.get("config") or {}).get("name", key))
                if inner is None:
                    return None
                if "name" in inner:
                    inner["name"] = _clean((value.get("config") or {}).get("name", inner["name"]))
                out[key] = inner
        elif key in fields and key not in ("type", "inputs", "name", "dtype_policy"):
            converted = _value(value)
            if converted is _CUSTOM:
                bad.append(f"`{key}` is a custom object")
            else:
                out[key] = converted
        elif key in DROPPED_KEYS or value is None or value is False:
            continue
        elif key in KERAS_ONLY_DEFAULTS and value == KERAS_ONLY_DEFAULTS[key]:
            continue
        else:
            bad.append(f"argument `{key}`={value!r} is not supported")
    if bad:
        ctx.problems.append(f"layer '{ours}' ({cls_name}): " + "; ".join(bad))
        return None
    try:  # validated here so a problem names the Keras layer; defaults left out
        dumped = spec_cls.model_validate(out).model_dump(mode="json", exclude_defaults=True)
    except ValidationError as exc:
        errors = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}`: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()[:5]
        )
        ctx.problems.append(f"layer '{ours}' ({cls_name}): {errors}")
        return None
    dumped.pop("inputs", None)
    return {
        "type": cls_name,
        "name": ours,
        **{k: v for k, v in dumped.items() if k not in ("type", "name")},
    }


_CUSTOM = object()


def _policy(value: Any) -> str | None:
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name")
    return value


def _value(value: Any) -> Any:
    """Keras's serialized initializers, regularizers and constraints as ours: a name when
    every argument is at its null default (`glorot_uniform`), else `{type: X, ...}`."""
    if isinstance(value, dict) and "class_name" in value:
        module = str(value.get("module") or "keras")
        if value.get("registered_name") not in (None, value["class_name"]) or not module.startswith(
            "keras"
        ):
            return _CUSTOM
        args = {k: v for k, v in (value.get("config") or {}).items() if v is not None}
        if not args:
            return snake_case(value["class_name"])
        return {"type": value["class_name"], **args}
    return value
