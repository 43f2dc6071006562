"""The weights of a `.keras` archive as our parameter trees, and the run-directory
checkpoint that lets `predict`, `evaluate` and `train` continue from them.

Each layer's variables are read from its weights-file group at the paths
`layout.weight_slots` gives (the same rules the exporter writes by), shape-checked
against the spec's inferred ParamInfo, and placed in `params`, `batch_stats` or `frozen`
wherever the compiled model keeps that variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelspec.runtime.keras_import.layout import LayoutError, weight_slots


def read_weights(h5_path: Path | None, spec: Any, groups: dict[str, str]) -> tuple[dict, list]:
    """((layer name, param path) -> array, problems) for every variable of the checked
    spec; `groups`: layer name -> its group in the weights file."""
    import h5py

    values: dict[tuple[str, str], np.ndarray] = {}
    problems: list[str] = []
    needed = [n for n in spec.graph.nodes if spec.shapes[n.name].params]
    if needed and h5_path is None:
        return values, ["the archive has no model.weights.h5"]
    if not needed:
        return values, problems
    with h5py.File(h5_path, "r") as f:
        for node in needed:
            try:
                slots = weight_slots(node.layer, spec.shapes[node.name].params)
            except LayoutError as exc:
                problems.append(f"layer '{node.name}': {exc}")
                continue
            for slot, info in slots:
                where = f"{groups.get(node.name, '?')}/{slot}"
                item = f.get(where)
                if not isinstance(item, h5py.Dataset):
                    problems.append(f"layer '{node.name}': no weight {info.path} at {where}")
                    continue
                value = np.asarray(item[()])
                if value.shape != tuple(info.shape):
                    problems.append(
                        f"layer '{node.name}': weight {info.path} has shape {value.shape} "
                        f"in the archive, the spec infers {tuple(info.shape)}"
                    )
                    continue
                values[(node.name, info.path)] = value
    return values, problems


def fill_state(state: Any, values: dict[tuple[str, str], np.ndarray]) -> Any:
    """`state` with every model variable replaced by its value from `values`."""
    import jax
    import jax.numpy as jnp

    def put(path, leaf):
        keys = [getattr(p, "key", getattr(p, "idx", None)) for p in path]
        key = (str(keys[1]), "/".join(str(k) for k in keys[2:]))
        if key not in values:
            raise KeyError(f"no imported value for {key}")
        return jnp.asarray(values[key], leaf.dtype)

    return state._replace(
        params=jax.tree_util.tree_map_with_path(put, state.params),
        batch_stats=jax.tree_util.tree_map_with_path(put, state.batch_stats),
        frozen=jax.tree_util.tree_map_with_path(put, state.frozen),
    )


def write_checkpoint(spec_file: Path, run_dir: Path, values: dict) -> int:
    """Save the imported weights as step 0 of `run_dir` (a run that has not trained yet:
    epoch 0, nothing logged), with the run's spec.yaml, so `predict` and `evaluate` use
    them and `train` starts from them. Returns the step written."""
    import yaml

    from modelspec.runtime.checkpoint import Checkpointer
    from modelspec.runtime.session import open_session

    session = open_session(spec_file, data=False)
    state = fill_state(session.state, values)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(session.spec.dump(), sort_keys=False))
    meta = {
        "epoch": 0,
        "next_batch": 0,
        "epochs_logged": 0,
        "callbacks": [],
        "callback_types": [],
        "finished": False,
        "spec_name": session.spec.name,
        "imported_from": "keras",
    }
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=None, async_save=False)
    try:
        ckpt.save(0, state, meta)
        ckpt.wait()
    finally:
        ckpt.close()
    return 0
