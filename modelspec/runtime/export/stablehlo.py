"""StableHLO export: `jax.export`'s serialized program of the inference function, its
weights, and a manifest; and `load_stablehlo`, which runs them with JAX alone.

The folder written (default `<run_dir>/export/model.stablehlo/`):

- `program.bin`: `jax.export.export(jax.jit(f))(...).serialize()` of
  `f(weights, inputs) -> outputs` in inference mode, with a symbolic batch dimension
  `b` (any batch size runs; a new size compiles once more), lowered for cpu, cuda and
  tpu where every operation lowers for them (else for this machine's platform alone;
  the manifest says which).
- `weights.npz`: the model's variables (params, batch statistics, frozen and adapted
  weights) as a flat list `w0000, w0001, ...`, in the program's argument order. They
  are an argument rather than constants in the program so the program stays small and
  the weights can be inspected or replaced; `nnx.State` itself cannot be an argument
  (its Param type is not registered with `jax.export`), hence the flat list.
- `manifest.json`: inputs (name, shape with `null` for the batch and other dynamic
  axes, dtype) in order, outputs likewise, the weight names, the platforms, the JAX
  version that wrote it, and the host layers' state file if any.
- `preprocessing.json` (models with host layers only: TextVectorization, ...): their
  vocabularies. String operations cannot be in a StableHLO program, so the program
  takes the host layers' *outputs* as inputs named after the layers; a server encodes
  text with these vocabularies first, as Keras's layers would.

Mixed-precision models are exported as they compute (`mixed_bfloat16`: bfloat16
inside, outputs in the dtypes the manifest lists); the weights stay float32.

`load_stablehlo` imports only JAX, NumPy and the standard library (no Flax, no
modelspec model code), so a serving process needs nothing else.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from modelspec.runtime.session import Session
    from modelspec.runtime.steps import TrainState

FORMAT = "modelspec-stablehlo"
FORMAT_VERSION = 1
PROGRAM = "program.bin"
WEIGHTS = "weights.npz"
MANIFEST = "manifest.json"
PREPROCESSING = "preprocessing.json"
PLATFORMS = ("cpu", "cuda", "tpu")
"""Lowered for all of these when possible, so one artifact serves on any of them."""


def _weight_key(i: int) -> str:
    return f"w{i:04d}"


def _storable(value: np.ndarray) -> np.ndarray:
    """npz stores only NumPy's own dtypes: an ml_dtypes array (bfloat16, float8) is
    saved as unsigned integers of its width and viewed back by `load_stablehlo` through
    the dtype the manifest names."""
    if value.dtype.kind == "V" or value.dtype.name not in np.sctypeDict:
        return value.view(f"uint{value.dtype.itemsize * 8}")
    return value


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file renamed into place: a reader (a server watching
    the folder) never sees half a file, and a failed write leaves the old one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _symbolic_inputs(types: dict[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
    """Abstract inputs: the batch axis of every input is the one symbol `b` (they share
    it), and any other axis the spec leaves open (`null`) gets a symbol of its own."""
    names = ["b"]
    for name, t in types.items():
        tag = re.sub(r"\W", "_", name)
        names += [f"{tag}_{axis}" for axis, d in enumerate(t.shape) if axis and d is None]
    symbols = iter(jax.export.symbolic_shape(", ".join(names)))
    batch = next(symbols)
    out = {}
    for name, t in types.items():
        shape = [batch] + [next(symbols) if d is None else d for d in t.shape[1:]]
        out[name] = jax.ShapeDtypeStruct(tuple(shape), np.dtype(t.dtype))
    return out


def _export(fn: Callable, args: tuple) -> jax.export.Exported:
    """Lower for every platform in PLATFORMS, or for this machine's alone when an
    operation has no lowering for one of them (said on stderr, listed in the manifest)."""
    try:
        return jax.export.export(jax.jit(fn), platforms=PLATFORMS)(*args)
    except Exception as exc:  # noqa: BLE001 - retried for the local platform; re-raised there
        exported = jax.export.export(jax.jit(fn))(*args)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        print(
            f"Note: exported for {', '.join(exported.platforms)} only; lowering for "
            f"{', '.join(PLATFORMS)} failed ({first}).",
            file=sys.stderr,
        )
        return exported


def _aval_entry(name: str, aval: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else None for d in aval.shape]
    return {"name": name, "shape": shape, "dtype": str(aval.dtype)}


def export_stablehlo(session: Session, state: TrainState, output: Path) -> list[Path]:
    """Write the folder `output` (program, weights, manifest, host state); the files
    written. The inference function is `ModelState.apply(inputs, training=False)`."""
    from modelspec.compiler.host_layers import device_input_types, host_nodes
    from modelspec.compiler.model import ModelState, flat

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(
            f"{output} is a file; a StableHLO export is a folder (program, weights, manifest)"
        )
    # Gathered to the host: the export is for one device, whatever mesh trained it.
    weights_tree = jax.device_get((state.params, state.batch_stats, state.frozen))
    rng = state.rng  # unused in inference mode, but the model is merged with it
    leaves, treedef = jax.tree_util.tree_flatten(weights_tree)
    graphdef = session.graphdef

    def infer(weights: list, inputs: dict) -> dict:
        params, stats, frozen = jax.tree_util.tree_unflatten(treedef, weights)
        outputs, _ = ModelState(graphdef, params, stats, rng, frozen).apply(inputs, training=False)
        return outputs

    types = device_input_types(session.spec)
    abstract_weights = [jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype) for x in leaves]
    exported = _export(infer, (abstract_weights, _symbolic_inputs(types)))
    outputs = jax.tree_util.tree_unflatten(exported.out_tree, exported.out_avals)
    names = [
        "/".join(map(str, (kind, *path)))
        for kind, tree in zip(("params", "batch_stats", "frozen"), weights_tree, strict=True)
        for path, _ in flat(tree)
    ]
    arrays = [np.asarray(x) for x in leaves]
    host = session.host
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": session.spec.name,
        "program": PROGRAM,
        "weights": WEIGHTS,
        "weight_names": names,
        "weight_dtypes": [str(a.dtype) for a in arrays],
        "inputs": [
            {"name": n, "shape": [None, *t.shape[1:]], "dtype": t.dtype} for n, t in types.items()
        ],
        "outputs": [_aval_entry(n, outputs[n]) for n in session.spec.graph.outputs],
        "batch_dimension": "b",
        "platforms": list(exported.platforms),
        "jax_version": jax.__version__,
        "calling_convention_version": exported.calling_convention_version,
        "preprocessing": PREPROCESSING if host else None,
        "host_layers": [
            {"name": n.name, "type": n.layer.type, "reads": n.refs[0]}
            for n in host_nodes(session.spec)
        ],
    }
    output.mkdir(parents=True, exist_ok=True)
    written = [output / PROGRAM, output / WEIGHTS]
    _atomic_write(written[0], lambda f: f.write(exported.serialize()))
    _atomic_write(
        written[1],
        lambda f: np.savez(f, **{_weight_key(i): _storable(a) for i, a in enumerate(arrays)}),
    )
    if host:
        state_text = json.dumps(host.state(), ensure_ascii=False, indent=1)
        written.append(output / PREPROCESSING)
        _atomic_write(written[-1], lambda f: f.write(state_text.encode("utf-8")))
    elif (output / PREPROCESSING).is_file():  # a stale one from an earlier model
        (output / PREPROCESSING).unlink()
    text = json.dumps(manifest, indent=1)
    written.append(output / MANIFEST)  # last: its presence means the rest is complete
    _atomic_write(written[-1], lambda f: f.write(text.encode("utf-8")))
    return written


def _check_inputs(inputs: dict[str, Any], specs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The inputs as the program's dtypes, refused with a plain message when a name,
    rank, fixed axis or batch size differs (the program's own errors are cryptic)."""
    missing = [s["name"] for s in specs if s["name"] not in inputs]
    extra = [k for k in inputs if k not in {s["name"] for s in specs}]
    if missing or extra:
        raise ValueError(
            f"the model takes the inputs {[s['name'] for s in specs]}; "
            f"missing {missing}, unknown {extra}"
        )
    out: dict[str, np.ndarray] = {}
    batch = None
    for s in specs:
        value = np.asarray(inputs[s["name"]])
        dtype = np.dtype(s["dtype"])
        if value.dtype != dtype:
            if not np.can_cast(value.dtype, dtype, "same_kind"):
                raise TypeError(f"input '{s['name']}' must be {dtype}, not {value.dtype}")
            value = value.astype(dtype)
        want = s["shape"]
        fits = value.ndim == len(want) and all(
            w is None or w == d for w, d in zip(want, value.shape, strict=True)
        )
        if not fits:
            shown = tuple("batch" if i == 0 else w for i, w in enumerate(want))
            raise ValueError(f"input '{s['name']}' must have shape {shown}, not {value.shape}")
        if batch is not None and value.shape[0] != batch:
            raise ValueError(f"every input must have the same batch size ({batch})")
        batch = value.shape[0]
        out[s["name"]] = value
    return out


def load_stablehlo(path: str | Path) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
    """A function from named input arrays to named output arrays (NumPy), running the
    exported program with its weights on JAX's default device. Needs only JAX."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} holds no modelspec StableHLO export (no {FORMAT} manifest)")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer modelspec (format version "
            f"{manifest['format_version']}; this one reads up to {FORMAT_VERSION})"
        )
    exported = jax.export.deserialize(bytearray((path / manifest["program"]).read_bytes()))
    with np.load(path / manifest["weights"]) as stored:
        weights = [
            stored[_weight_key(i)].view(jax.numpy.dtype(dtype))
            for i, dtype in enumerate(manifest["weight_dtypes"])
        ]
    weights = jax.device_put(weights)
    call = jax.jit(exported.call)
    specs = manifest["inputs"]

    def run(inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        outputs = call(weights, _check_inputs(inputs, specs))
        return {name: np.asarray(value) for name, value in outputs.items()}

    run.manifest = manifest  # type: ignore[attr-defined] - for servers that want it
    return run


__all__ = ["export_stablehlo", "load_stablehlo"]
