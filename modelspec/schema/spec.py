"""The whole spec file: `modelspec: 1`, `name`, `seed`, `model` and the training sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from modelspec.schema.base import PositiveInt, SpecModel
from modelspec.schema.data import DataSpec
from modelspec.schema.distribution import DistributionSpec
from modelspec.schema.layers import Layer
from modelspec.schema.losses import Loss
from modelspec.schema.metrics import Metric
from modelspec.schema.optimizers import Optimizer
from modelspec.schema.precision import DTypePolicyName
from modelspec.schema.stacks import RematPolicy, StackSpec
from modelspec.schema.tensors import MAX_RANK
from modelspec.schema.training import CheckpointSpec, TrainSpec

DType = Literal[
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "int32",
    "int64",
    "int8",
    "uint8",
    "bool",
    "string",
]


class InputSpec(SpecModel):
    """One model input; the batch axis is implicit."""

    shape: list[PositiveInt | None] = Field(max_length=MAX_RANK - 1)
    """Shape without the batch axis; null for a variable-length axis. At most 63 axes (a
    tensor has at most 64, the batch axis included)."""
    dtype: DType = "float32"
    """Element type (int32 for token ids; `string` for raw text, which only the text
    layers — TextVectorization, StringLookup, Hashing — may read)."""


InputName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length=100)
]
"""A model input's name: a key in npz files and a column family in CSV specs, so a plain
identifier (never control characters that would reach a terminal)."""


class ModelSpec(SpecModel):
    """The network: named inputs, a list of layers, and the outputs."""

    inputs: dict[InputName, InputSpec] = Field(min_length=1)
    """Input name -> shape and dtype."""
    layers: list[Layer] = Field(min_length=1)
    """Layers in order. Each takes the previous layer's output unless it names its
    `inputs`. A layer's `type` may also name a block from `blocks:`."""
    outputs: list[str] | None = None
    """Names of the layers (or inputs) that are the model's outputs. Default: the last
    layer."""
    dtype_policy: DTypePolicyName = "float32"
    """Keras dtype policy of every layer (a layer's own `dtype_policy` overrides it):
    `float32`, or `mixed_bfloat16` / `mixed_float16` — variables, optimizer state and
    checkpoints stay float32, layers compute in the half type, losses and metrics in
    float32. `mixed_float16` also scales the loss dynamically, as Keras's
    `LossScaleOptimizer` (which `compile` adds for that policy)."""
    remat: RematPolicy = "none"
    """Default rematerialization of every block use (a use's own `remat` overrides it):
    see the language reference, "Large models"."""
    stacks: list[StackSpec] = Field(default_factory=list)
    """The repeated block uses and how they compile (written by block expansion from the
    uses' `repeat`, `scan` and `remat`; not usually written by hand)."""


class BlockSpec(SpecModel):
    """A reusable sub-graph, used in `model.layers` as `{type: <block name>, ...args}`.

    Inside the block, `${param}` is replaced by the argument's value (a whole-string
    `${param}` keeps the value's type) and `${index}` by the repetition number."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter name -> default value; null means the argument is required."""
    inputs: list[str] = Field(default_factory=lambda: ["x"], min_length=1)
    """Names by which the block's layers refer to its inputs."""
    layers: list[dict[str, Any]] = Field(min_length=1)
    """The block's layers, written like model layers (they may use other blocks)."""
    output: str | None = None
    """The layer whose output is the block's output. Default: the last layer."""


class Spec(SpecModel):
    """A modelspec file."""

    modelspec: Literal[1] = 1
    """Spec format version."""
    name: str = Field("model", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", max_length=100)
    """Run name; the default run directory is `runs/<name>` (so: no path separators, no
    leading dot, at most 100 characters)."""
    seed: int = 0
    """Seed of every random choice: initialization, dropout, shuffling, splits."""
    blocks: dict[str, BlockSpec] = Field(default_factory=dict)
    """Reusable blocks (expanded into `model.layers` when the spec is loaded)."""
    model: ModelSpec
    """The network."""
    data: DataSpec | None = None
    """Training and validation data."""
    loss: Loss | dict[str, Loss] | None = None
    """The loss, or one loss per model output (output name -> loss)."""
    loss_weights: dict[str, float] | None = None
    """Output name -> weight of its loss in the total (multi-output models)."""
    metrics: list[Metric] | dict[str, list[Metric]] = Field(default_factory=list)
    """Metrics, or output name -> metrics for multi-output models."""
    optimizer: Optimizer | None = None
    """The optimizer (Keras names), e.g. `{type: Adam, learning_rate: 0.001}`."""
    train: TrainSpec = Field(default_factory=TrainSpec)
    """Epochs, callbacks and loop options."""
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    """Checkpointing and resume."""
    distribution: DistributionSpec = Field(default_factory=DistributionSpec)
    """Device mesh and sharding rules."""

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_string(cls, value: Any) -> Any:
        """Keras accepts `optimizer: adam`; so do we (default arguments)."""
        if isinstance(value, str):
            from modelspec.schema.optimizers import OPTIMIZER_TYPES

            lookup = {k.lower(): k for k in OPTIMIZER_TYPES}
            return {"type": lookup.get(value.lower(), value)}
        return value
