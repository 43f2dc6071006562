"""The host stage: the text layers of a model (TextVectorization, StringLookup, ...), run
in NumPy between the data sources and the devices.

A model with host layers (`compiler/host_layers.py`) is trained, evaluated and used
for prediction on their outputs: the string (or raw integer) inputs are encoded once,
here, and the compiled model receives each host layer's output as an input named after
the layer. Their state (vocabularies, idf weights) is Keras's `adapt()` state:

- learned on a fresh run from the training split, in stored order, before step 1;
- written to the run directory (`preprocessing.json`, for people and other tools) and
  into every checkpoint's metadata with a SHA-256 of it, so a resumed run, `evaluate`
  and `predict` use exactly the state of the checkpoint they restore, and a damaged
  state is refused like damaged weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelspec.compiler.host_layers import host_nodes
from modelspec.compiler.infer import input_types
from modelspec.errors import AdaptError, SpecError
from modelspec.schema.vocabulary import load_reference

STATE_FILE = "preprocessing.json"
"""The host layers' state in the run directory (written by `train`)."""
META_KEY = "preprocessing"
"""The checkpoint-metadata key holding the state, beside `META_DIGEST`."""
META_DIGEST = "preprocessing_sha256"
_CHUNK = 4096
"""Rows encoded at a time: bounds the temporaries of one encode call."""


class HostStateDamaged(Exception):
    """The state stored with a checkpoint is missing, unreadable or fails its digest."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a host state."""
    text = json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class HostStage:
    """The host layers of one model, built, with their state."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.nodes = host_nodes(spec)
        types = input_types(spec)
        self.layers = {
            n.name: load_reference(type(n.layer).host)(
                n.layer, types[n.refs[0]], spec.shapes[n.name]
            )
            for n in self.nodes
        }
        self.sources = {n.name: n.refs[0] for n in self.nodes}
        """Host layer -> the model input it reads."""

    def __bool__(self) -> bool:
        return bool(self.nodes)

    # -- state ----------------------------------------------------------------------
    def adapt(self, train: Any, report: Callable[[str], None]) -> None:
        """Keras's `adapt()` of every host layer without a given vocabulary, on the
        training split's raw input; an impossible state is a positioned SpecError."""
        for node in self.nodes:
            layer = self.layers[node.name]
            if not layer.needs_adapt:
                continue
            try:
                layer.adapt(np.asarray(train.inputs[node.refs[0]]))
            except AdaptError as exc:
                path = ("model", "layers", node.index) + ((exc.field,) if exc.field else ())
                message = f"{node.layer.type} '{node.name}': {exc.message}"
                raise SpecError.single(self.spec.error(path, message, hint=exc.hint)) from None
            report(f"Adapted {node.layer.type} '{node.name}' on {len(train)} training samples")

    def state(self) -> dict[str, Any]:
        """Layer name -> its JSON-serialisable state."""
        return {name: layer.get_state() for name, layer in self.layers.items()}

    def load(self, state: dict[str, Any]) -> None:
        """Take the state a checkpoint or run directory holds."""
        missing = [name for name in self.layers if name not in state]
        if missing:
            raise HostStateDamaged(f"it holds no state for the layers {missing}")
        for name, layer in self.layers.items():
            layer.set_state(state[name])

    def meta(self) -> dict[str, Any]:
        """The checkpoint-metadata entries of the current state."""
        if not self:
            return {}
        state = self.state()
        return {META_KEY: state, META_DIGEST: state_digest(state)}

    def load_meta(self, meta: dict[str, Any]) -> None:
        """Take the state from checkpoint metadata, checked against its digest."""
        if not self:
            return
        state, digest = meta.get(META_KEY), meta.get(META_DIGEST)
        if not isinstance(state, dict):
            raise HostStateDamaged("its metadata holds no preprocessing state")
        if digest != state_digest(state):
            raise HostStateDamaged("its preprocessing state does not match its digest")
        self.load(state)

    def write(self, run_dir: Path) -> None:
        """`preprocessing.json` in the run directory, replaced atomically."""
        if not self:
            return
        path = Path(run_dir) / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state(), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    # -- encoding --------------------------------------------------------------------
    def encode_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw model inputs -> the device model's inputs: the host layers' outputs (by
        layer name) and the inputs that device layers read themselves."""
        from modelspec.compiler.host_layers import device_input_types

        wanted = device_input_types(self.spec)
        out: dict[str, np.ndarray] = {}
        for name in wanted:
            if name in self.layers:
                out[name] = self._encode(name, inputs[self.sources[name]])
            else:
                out[name] = inputs[name]
        return out

    def _encode(self, name: str, raw: np.ndarray) -> np.ndarray:
        layer = self.layers[name]
        parts = [layer(raw[i : i + _CHUNK]) for i in range(0, len(raw), _CHUNK)]
        if not parts:
            return layer(raw)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def encode_dataset(self, dataset: Any) -> Any:
        """An in-memory dataset with its inputs encoded (targets unchanged)."""
        from modelspec.runtime.data.dataset import ArrayDataset

        if dataset is None or not self:
            return dataset
        if not isinstance(dataset, ArrayDataset):
            raise TypeError(f"host layers need an in-memory dataset, not {type(dataset)}")
        return ArrayDataset(self.encode_inputs(dataset.inputs), dict(dataset.targets))

    def encode_datasets(self, data: Any) -> Any:
        """`Datasets` with both splits encoded."""
        from modelspec.runtime.data.dataset import Datasets

        if data is None or not self:
            return data
        return Datasets(self.encode_dataset(data.train), self.encode_dataset(data.validation))


__all__ = ["HostStage", "HostStateDamaged", "META_DIGEST", "META_KEY", "STATE_FILE", "state_digest"]
