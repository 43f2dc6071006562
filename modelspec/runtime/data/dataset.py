"""Data for training: loading and checking it against the model, then batching it.

Everything that can be wrong with the data (shapes, dtypes, label ranges, NaN/inf,
sample counts, files) is checked here before step 1 and raised together as one `DataError`,
so a run never dies an hour in on a shape error. Batching is a pure function of
(seed, epoch, batch index): resuming a run at a saved (epoch, index) reproduces exactly
the batches an uninterrupted run would have seen, and every batch has the same shape
(the last one is padded and masked) so the step function compiles once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from modelspec.errors import DataError
from modelspec.runtime.data.checks import check_arrays, loss_kind
from modelspec.runtime.data.sources import Reporter, read_source
from modelspec.schema.data import DataSpec
from modelspec.schema.tensors import TensorType

__all__ = ["ArrayDataset", "Batch", "Datasets", "load_data", "split_index"]


class Batch(TypedDict):
    """One batch: arrays of exactly `batch_size` rows, plus the padding mask."""

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    mask: np.ndarray
    """float32 (batch_size,): 1.0 for real samples, 0.0 for padding rows."""


@dataclass
class ArrayDataset:
    """Checked, model-ready arrays (possibly memory-mapped), batched deterministically."""

    inputs: dict[str, np.ndarray]
    """Model input name -> array (N, ...), dtype = the model input's dtype."""
    targets: dict[str, np.ndarray]
    """Model output name -> array (N, ...): int32 class indices for sparse categorical
    losses (shape = output shape without its last axis), else float32 with the output's
    rank."""
    _order_cache: tuple[tuple[int, int, bool], np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        first = next(iter((*self.inputs.values(), *self.targets.values())), None)
        return 0 if first is None else int(first.shape[0])

    def num_batches(self, batch_size: int, drop_remainder: bool) -> int:
        """Batches per epoch: the partial last batch counts unless it is dropped."""
        n = len(self)
        return n // batch_size if drop_remainder else math.ceil(n / batch_size)

    def order(self, epoch: int, *, shuffle: bool, seed: int) -> np.ndarray:
        """Sample indices in the order epoch `epoch` visits them; a pure function of
        (seed, epoch), so any batch of any epoch can be recomputed on resume."""
        key = (int(seed), int(epoch), bool(shuffle))
        if self._order_cache is None or self._order_cache[0] != key:
            n = len(self)
            if shuffle:
                rng = np.random.default_rng([int(seed) % 2**64, int(epoch) % 2**64])
                order = rng.permutation(n)
            else:
                order = np.arange(n)
            self._order_cache = (key, order)
        return self._order_cache[1]

    def batch(
        self,
        epoch: int,
        index: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_remainder: bool,
    ) -> Batch:
        """Batch `index` of epoch `epoch`: always `batch_size` rows; a partial last batch
        repeats its first rows and marks them 0.0 in `mask`."""
        count = self.num_batches(batch_size, drop_remainder)
        if not 0 <= index < count:
            raise IndexError(f"batch {index} out of range: an epoch has {count} batches")
        order = self.order(epoch, shuffle=shuffle, seed=seed)
        rows, mask = _batch_rows(order, index, batch_size)
        return Batch(
            inputs={k: np.asarray(v[rows]) for k, v in self.inputs.items()},
            targets={k: np.asarray(v[rows]) for k, v in self.targets.items()},
            mask=mask,
        )

    def epoch_rows(
        self, epoch: int, *, batch_size: int, shuffle: bool, seed: int, drop_remainder: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows and masks of every batch of epoch `epoch`, as `(batches, batch_size)`
        tables (int64 row indices, float32 masks): row i is exactly what `batch(epoch,
        i, ...)` gathers, for pipelines that gather batches elsewhere (on the device)."""
        order = self.order(epoch, shuffle=shuffle, seed=seed)
        count = self.num_batches(batch_size, drop_remainder)
        pairs = [_batch_rows(order, index, batch_size) for index in range(count)]
        rows = np.array([r for r, _ in pairs], dtype=np.int64).reshape(count, batch_size)
        masks = np.array([m for _, m in pairs], dtype=np.float32).reshape(count, batch_size)
        return rows, masks

    def epoch_batches(
        self,
        epoch: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_remainder: bool,
        start: int = 0,
    ) -> Iterator[Batch]:
        """Batches `start`, `start + 1`, ... of epoch `epoch` (resume with `start`)."""
        for index in range(start, self.num_batches(batch_size, drop_remainder)):
            yield self.batch(
                epoch,
                index,
                batch_size,
                shuffle=shuffle,
                seed=seed,
                drop_remainder=drop_remainder,
            )

    def take(self, rows: slice | np.ndarray) -> ArrayDataset:
        """The samples in `rows`: a slice gives a view (memory-mapped arrays stay
        mapped); an index array gives a copy."""
        return ArrayDataset(
            {k: v[rows] for k, v in self.inputs.items()},
            {k: v[rows] for k, v in self.targets.items()},
        )


def _batch_rows(order: np.ndarray, index: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and mask of batch `index` of an epoch visiting `order`: always `batch_size`
    rows; a partial last batch repeats its first rows, masked 0.0 (the one definition
    shared by host batches and device-gathered ones)."""
    rows = order[index * batch_size : (index + 1) * batch_size]
    mask = np.ones(batch_size, dtype=np.float32)
    mask[len(rows) :] = 0.0
    return np.resize(rows, batch_size), mask


@dataclass
class Datasets:
    """The training data and, when the spec asks for it, the validation data."""

    train: ArrayDataset
    validation: ArrayDataset | None


def split_order(n: int, seed: int) -> np.ndarray:
    """The seeded permutation behind `split: random` (independent of the epoch orders)."""
    return np.random.default_rng([seed % 2**64, 2**32 + 7]).permutation(n)


def split_index(n: int, validation_split: float) -> int:
    """Where Keras's `fit(validation_split=...)` cuts n samples: train = [0, k)."""
    return int(math.floor(n * (1.0 - validation_split)))


def load_data(
    data: DataSpec,
    *,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    losses: dict[str, Any] | None,
    seed: int,
    base_dir: Path,
    locate: Callable[[tuple[str | int, ...]], tuple[str, int, int]],
    id_limits: dict[str, Any] | None = None,
) -> Datasets:
    """Read every source of `data`, check it against the model, and split it.

    `losses` maps output names to loss specs (`.type` or `["type"]`); outputs without a
    loss need no targets when `losses` is given. `seed` is accepted so callers pass one
    place for everything random: it seeds the `split: random` hold-out; batch order takes
    its seed at `batch()` time. `id_limits`: the vocabulary of the inputs an Embedding
    reads (`id_bounds.id_bounds`), checked like dtypes. Raises
    one `DataError` holding every problem found.
    """
    rep = Reporter(locate)
    loss_types = {name: loss_kind(spec) for name, spec in (losses or {}).items()}
    needed = [o for o in model_outputs if losses is None or o in loss_types]
    sources = [("train", data.train)]
    if data.validation is not None:
        sources.append(("validation", data.validation))
    checked: dict[str, ArrayDataset | None] = {}
    learned: dict[Any, Any] = {}  # e.g. training classes the validation data must use
    for split, source in sources:
        raw = read_source(
            source,
            where=("data", split),
            model_inputs=model_inputs,
            model_outputs=model_outputs,
            needed_outputs=needed,
            base_dir=Path(base_dir),
            rep=rep,
            learned=learned,
        )
        arrays = check_arrays(
            raw,
            model_inputs,
            model_outputs,
            loss_types,
            rep,
            allow_nonfinite=data.allow_nonfinite,
            id_limits=id_limits,
        )
        checked[split] = ArrayDataset(*arrays) if arrays is not None else None
    train, validation = checked["train"], checked.get("validation")
    knock_on = train is not None and len(train) == 0 and rep.diagnostics  # reader failed
    if train is not None and data.validation_split and not knock_on:
        n = len(train)
        k = split_index(n, data.validation_split)
        if k in (0, n):
            rep.error(
                ("data", "validation_split"),
                f"data.train has {n} samples, too few to hold out a fraction of "
                f"{data.validation_split} for validation (it leaves "
                f"{'no training' if k == 0 else 'no validation'} samples)",
                received=data.validation_split,
                hint="Use more data, or a different validation_split.",
            )
        elif data.split == "last":
            train, validation = train.take(slice(0, k)), train.take(slice(k, n))
        else:
            order = split_order(n, seed)
            train, validation = train.take(np.sort(order[:k])), train.take(np.sort(order[k:]))
    if rep.diagnostics:
        raise DataError(rep.diagnostics)
    assert train is not None
    return Datasets(train=train, validation=validation)
