"""Everything a run needs, built once from a spec: data, model, objective, optimizer,
initial state, and the jitted steps. Shared by `train`, `evaluate` and `predict`.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import optax
from flax import nnx

from modelspec.compiler.checked import CheckedSpec
from modelspec.compiler.infer import input_types
from modelspec.compiler.load import load
from modelspec.compiler.model import FILTERS, CompiledModel, split
from modelspec.compiler.sharding import mesh as distribute
from modelspec.errors import SpecError
from modelspec.runtime.background import worker
from modelspec.runtime.data.dataset import Datasets, load_data
from modelspec.runtime.data.id_bounds import id_bounds
from modelspec.runtime.host_stage import HostStage
from modelspec.runtime.memory_guard import check_fits
from modelspec.runtime.objective.objective import Objective, build_objective, losses_by_output
from modelspec.runtime.optim.loss_scale import loss_scale_optimizer, uses_loss_scaling
from modelspec.runtime.optim.optimizers import build_optimizer
from modelspec.runtime.steps import (
    TrainState,
    init_state,
    jit_train,
    make_eval_step,
    make_predict_step,
    make_train_step,
)
from modelspec.schema.optimizers import default_optimizer


@dataclass
class Session:
    spec: CheckedSpec
    data: Datasets | None
    graphdef: Any
    objective: Objective | None
    tx: optax.GradientTransformation | None
    initial: TrainState | Future
    """The initial state, or the background compile and run that makes it (`state`)."""
    abstract_state: Any
    """Shapes, dtypes and shardings of the state: what compiling a step needs."""
    train_step: Any = None
    eval_step: Any = None
    predict_step: Any = None
    dist: Any = None
    shardings: Any = None
    host: HostStage | None = None
    """The model's host (text) layers; falsy when it has none (`runtime/host_stage.py`)."""

    @property
    def state(self) -> TrainState:
        """The initial state (waits for the background init to finish)."""
        if isinstance(self.initial, Future):
            self.initial = self.initial.result()
        return self.initial

    @property
    def base_dir(self) -> Path:
        return self.spec.base_dir


def need_data(spec: CheckedSpec) -> None:
    if spec.data is None:
        raise spec.missing(
            "data",
            "this command needs a `data:` section",
            hint="e.g. `data: {train: {type: sklearn, name: digits}, validation_split: 0.2}`.",
        )


def load_datasets(spec: CheckedSpec, *, with_targets: bool = True) -> Datasets:
    need_data(spec)
    an = spec
    outputs = {n: t for n in an.graph.outputs if (t := an.output_type(n)) is not None}
    inputs = input_types(spec)
    losses = losses_by_output(spec) if with_targets else None
    return load_data(
        spec.data,
        model_inputs=inputs,
        model_outputs=outputs,
        losses=losses,
        seed=spec.seed,
        base_dir=spec.base_dir,
        locate=lambda path: spec.locate(path),
        id_limits=id_bounds(spec.graph),
    )


def optimizer_spec(spec: CheckedSpec):
    """The spec's optimizer, or Keras's `compile()` default (RMSprop)."""
    return spec.optimizer if spec.optimizer is not None else default_optimizer()


def open_session(
    source: Any,
    overrides: list[str] | tuple = (),
    *,
    data: bool = True,
    devices: list | None = None,
) -> Session:
    """Load and check the spec (and data), lay out the device mesh, create the state
    already sharded, and compile the steps. The state always has the training
    structure, so `evaluate`/`predict` restore the same checkpoints `train` writes."""
    spec = load(source, overrides)
    problems: list = []  # mesh and data problems are reported together
    try:
        dist = distribute.setup(spec, devices)
        check_fits(spec, dist)
    except SpecError as exc:
        problems += exc.diagnostics
    try:
        datasets = load_datasets(spec) if data else None
    except SpecError as exc:
        problems += exc.diagnostics
    if problems:
        raise SpecError(problems)
    objective = build_objective(spec) if spec.loss is not None else None
    tx = build_optimizer(optimizer_spec(spec))
    if uses_loss_scaling(spec):  # Keras's compile wraps it in a LossScaleOptimizer
        tx = loss_scale_optimizer(tx)
    graphdef = nnx.split(nnx.eval_shape(lambda: CompiledModel(spec)), *FILTERS)[0]

    def init():
        return init_state(split(CompiledModel(spec)), tx, objective)

    # Created by a jitted init with output shardings: no full replica on one device.
    # It compiles and runs in a background thread: XLA compiles the initializers'
    # random-number programs for longer than the train step itself (1.35 s vs 0.95 s
    # for a small transformer on CPU), and the step needs only the state's shapes, so
    # the trainer compiles its first step meanwhile (`Trainer.run`).
    abstract = jax.eval_shape(init)
    shardings = distribute.state_shardings(dist, abstract)
    jitted = jax.jit(init, out_shardings=shardings)
    session = Session(
        spec,
        datasets,
        graphdef,
        objective,
        tx,
        worker("init").submit(_make_state, jitted, _elements(abstract), _platform(shardings)),
        jax.tree_util.tree_map(lambda leaf, at: leaf.update(sharding=at), abstract, shardings),
        dist=dist,
        shardings=shardings,
        host=HostStage(spec),
    )
    spe = spec.train.steps_per_execution
    if objective is not None:
        session.train_step = jit_train(
            make_train_step(graphdef, tx, objective, dist), spe, dist, shardings
        )
        session.eval_step = make_eval_step(graphdef, objective, dist, shardings)
    session.predict_step = make_predict_step(graphdef, dist, shardings)
    return session


FAST_INIT_MAX_ELEMENTS = 16 * 2**20
"""States up to this many elements are initialized by a program compiled without XLA's
backend optimizations (on CPU)."""

_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _elements(abstract: Any) -> int:
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(abstract))


def _platform(shardings: Any) -> str:
    """The platform the state lives on (its devices', not necessarily the default's)."""
    leaves = jax.tree_util.tree_leaves(shardings)
    return next(iter(leaves[0].device_set)).platform if leaves else jax.default_backend()


def _make_state(jitted: Any, elements: int, platform: str) -> TrainState:
    """Run the jitted init once. The program runs once per run, so on CPU a small
    state's init is compiled without backend optimizations: the initializers'
    random-number code (a threefry block per weight) compiles about 3x faster (a small
    transformer: 0.5 s vs 1.5 s) and runs about 3.5x slower (milliseconds below
    `FAST_INIT_MAX_ELEMENTS`; 0.9 s vs 0.25 s at 33M elements, where it stops paying)."""
    lowered = jitted.lower()
    if platform == "cpu" and elements <= FAST_INIT_MAX_ELEMENTS:
        return lowered.compile(compiler_options=_FAST_COMPILE)()
    return lowered.compile()()
