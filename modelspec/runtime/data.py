"""Data for training: loading and checking it against the model, then batching it.

Everything that can be wrong with the data (shapes, dtypes, label ranges, sample
counts, files) is checked here before step 1 and raised together as one `DataError`,
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

from modelspec.compiler.types import TensorType, format_shape
from modelspec.errors import DataError
from modelspec.runtime.sources import RawArray, RawSource, Reporter, read_source
from modelspec.schema.data import DataSpec

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
        rows = self.order(epoch, shuffle=shuffle, seed=seed)[
            index * batch_size : (index + 1) * batch_size
        ]
        mask = np.ones(batch_size, dtype=np.float32)
        mask[len(rows) :] = 0.0
        rows = np.resize(rows, batch_size)
        return Batch(
            inputs={k: np.asarray(v[rows]) for k, v in self.inputs.items()},
            targets={k: np.asarray(v[rows]) for k, v in self.targets.items()},
            mask=mask,
        )

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
) -> Datasets:
    """Read every source of `data`, check it against the model, and split it.

    `losses` maps output names to loss specs (`.type` or `["type"]`); outputs without a
    loss need no targets when `losses` is given. `seed` is accepted so callers pass one
    place for everything random: it seeds the `split: random` hold-out; batch order takes
    its seed at `batch()` time. Raises
    one `DataError` holding every problem found.
    """
    rep = Reporter(locate)
    loss_types = {name: _loss_kind(spec) for name, spec in (losses or {}).items()}
    needed = [o for o in model_outputs if losses is None or o in loss_types]
    sources = [("train", data.train)]
    if data.validation is not None:
        sources.append(("validation", data.validation))
    checked: dict[str, ArrayDataset | None] = {}
    for split, source in sources:
        raw = read_source(
            source,
            where=("data", split),
            model_inputs=model_inputs,
            model_outputs=model_outputs,
            needed_outputs=needed,
            base_dir=Path(base_dir),
            rep=rep,
        )
        checked[split] = _check(raw, model_inputs, model_outputs, loss_types, rep)
    train, validation = checked["train"], checked.get("validation")
    if train is not None and data.validation_split:
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


_SPARSE = "sparse"
_CATEGORICAL = "categorical"
_BINARY = "binary"
_OTHER = "other"
_LOSS_KINDS = {
    "sparsecategoricalcrossentropy": _SPARSE,
    "categoricalcrossentropy": _CATEGORICAL,
    "categoricalfocalcrossentropy": _CATEGORICAL,
    "binarycrossentropy": _BINARY,
    "binaryfocalcrossentropy": _BINARY,
}


def _loss_kind(spec: Any) -> tuple[str, str, int | None]:
    """(kind, display name, ignore_class) of a loss given as a spec object, dict or name."""
    if isinstance(spec, dict):
        name, ignore = spec.get("type"), spec.get("ignore_class")
    else:
        name = spec if isinstance(spec, str) else getattr(spec, "type", None)
        ignore = getattr(spec, "ignore_class", None)
    name = str(name or "")
    return _LOSS_KINDS.get(name.replace("_", "").lower(), _OTHER), name, ignore


def _dims_match(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(got) == len(want) and all(
        w is None or g == w for g, w in zip(got, want, strict=True)
    )


def _shape_n(shape: tuple[int, ...]) -> str:
    return format_shape(("N", *shape))  # type: ignore[arg-type]


def _check(
    raw: RawSource,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    losses: dict[str, tuple[str, str, int | None]],
    rep: Reporter,
) -> ArrayDataset | None:
    """Check and cast every array of `raw`; None when anything was reported."""
    before = len(rep.diagnostics)
    arrays = [*raw.inputs.values(), *raw.targets.values()]
    counts = {a.what: a.array.shape[0] for a in arrays if a.array.ndim > 0}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{what} has {n}" for what, n in counts.items())
        rep.error(
            raw.where,
            f"{raw.label}: arrays have different numbers of samples: {listed}",
            received=", ".join(str(n) for n in counts.values()),
            hint="Every input and target array needs one row per example.",
        )
    elif counts and next(iter(counts.values())) == 0:
        rep.error(raw.where, f"{raw.label}: the data has no samples")
    inputs = {}
    for name, item in raw.inputs.items():
        inputs[name] = _check_input(raw, name, item, model_inputs[name], rep)
    kinds = {name: losses.get(name, (_OTHER, "", None)) for name in raw.targets}
    targets = {}
    for name, item in raw.targets.items():
        targets[name] = _check_target(raw, name, item, model_outputs[name], kinds[name], rep)
    if len(rep.diagnostics) > before:
        return None
    return ArrayDataset(inputs, targets)  # type: ignore[arg-type]


def _not_numeric(raw: RawSource, item: RawArray, role: str, rep: Reporter) -> bool:
    if item.array.ndim == 0:
        rep.error(
            item.path,
            f"{raw.label}: {item.what} is a scalar; {role} needs one row per example",
            received=f"shape {item.array.shape}",
        )
        return True
    if item.array.dtype.kind in "biuf":
        return False
    rep.error(
        item.path,
        f"{raw.label}: {item.what} has dtype {item.array.dtype}, which is not numeric ({role})",
        received=str(item.array.dtype),
        hint="Store numbers (encode categories and text as integers first).",
    )
    return True


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _check_input(
    raw: RawSource, name: str, item: RawArray, want: TensorType, rep: Reporter
) -> np.ndarray | None:
    role = f"model input {name!r}"
    if _not_numeric(raw, item, role, rep):
        return None
    arr = item.array
    ok = True
    if not _dims_match(arr.shape[1:], want.shape[1:]):
        ok = False
        new = ", ".join(str(d) for d in arr.shape[1:])
        rep.error(
            item.path,
            f"{raw.label}: {item.what} has shape {_shape_n(arr.shape[1:])} but {role} "
            f"expects {format_shape(want.shape)}",
            received=_shape_n(arr.shape[1:]),
            hint=f"Reshape the array, or change model.inputs.{name}.shape to [{new}].",
        )
    dtype = _numpy_dtype(want.dtype)
    problem = None
    if dtype.kind in "iub" and arr.dtype.kind == "f" and arr.size:
        bad = _first_nonintegral(arr)
        if bad is not None:
            problem = "holds non-integer values", bad, "Round the data, or declare it float32"
    if problem is None and dtype.kind in "iub" and arr.dtype.kind != "b" and arr.size:
        lo, hi = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        low, high = arr.min(), arr.max()
        if low < lo or high > hi:
            reason = f"has values from {low} to {high}, outside [{lo}, {hi}]"
            problem = reason, f"min {low}, max {high}", "Change the data, or use a wider dtype"
    if problem is not None:
        ok = False
        rep.error(
            item.path,
            f"{raw.label}: {item.what} {problem[0]}, but {role} has dtype {want.dtype}",
            received=problem[1],
            hint=f"{problem[2]} in model.inputs.{name}.dtype.",
        )
    return arr.astype(dtype, copy=False) if ok else None


def _first_nonintegral(arr: np.ndarray) -> str | None:
    flat = np.asarray(arr).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))
    if bad.size == 0:
        return None
    row = np.unravel_index(bad[0], arr.shape)[0]
    return f"{flat[bad[0]].item()!r} in sample {row}"


def _check_target(
    raw: RawSource,
    name: str,
    item: RawArray,
    out: TensorType,
    kind: tuple[str, str, int | None],
    rep: Reporter,
) -> np.ndarray | None:
    loss, loss_name, ignore_class = kind
    role = f"model output {name!r}"
    if _not_numeric(raw, item, role, rep):
        return None
    arr, want = item.array, out.shape[1:]
    got = _shape_n(arr.shape[1:])
    uses = f" with {loss_name}" if loss_name else ""
    if loss == _SPARSE:
        if _dims_match(arr.shape[1:], want[:-1] + (1,)):
            arr = arr.reshape(arr.shape[:-1])
        if not _dims_match(arr.shape[1:], want[:-1]):
            rep.error(
                item.path,
                f"{raw.label}: {item.what} has shape {got}, but {loss_name} "
                f"needs one class index per example for {role} "
                f"{format_shape(out.shape)}, i.e. shape {_shape_n(want[:-1])}",
                received=got,
                hint="For one-hot labels use CategoricalCrossentropy.",
            )
            return None
        bad = _first_nonintegral(arr) if arr.dtype.kind == "f" and arr.size else None
        if bad is not None:
            rep.error(
                item.path,
                f"{raw.label}: {item.what} holds non-integer values, but "
                f"{loss_name} needs integer class indices",
                received=bad,
                hint="Use integer labels 0..num_classes-1.",
            )
            return None
        classes = want[-1] if want else None
        counted = arr if ignore_class is None else np.asarray(arr)[arr != ignore_class]
        low, high = (counted.min(), counted.max()) if counted.size else (0, 0)
        if low < 0 or (classes is not None and high >= classes):
            upper = f"[0, {classes})" if classes is not None else "[0, num_classes)"
            rep.error(
                item.path,
                f"{raw.label}: labels in {item.what} range from {low:g} to {high:g}, but "
                f"{loss_name} needs class indices in {upper}"
                + (f"; {role} has {classes} units" if classes is not None else ""),
                received=f"min {low:g}, max {high:g}",
                hint=f"Give the last layer {int(high) + 1} units, or remap the labels to "
                f"0..{(classes or 1) - 1}."
                if low >= 0
                else "Remap the labels to start at 0 (or set the loss's ignore_class).",
            )
            return None
        return arr.astype(np.int32, copy=False)
    if len(arr.shape) == len(out.shape) - 1:
        arr = arr.reshape((*arr.shape, 1))  # (N,) labels for a (None, 1) output
    fits = len(arr.shape) == len(out.shape) and all(
        w is None or g in (w, 1) for g, w in zip(arr.shape[1:], want, strict=True)
    )
    if loss == _CATEGORICAL:
        fits = _dims_match(arr.shape[1:], want)
    if not fits:
        hint = "Reshape the labels, or change the model's last layer to match."
        if loss == _CATEGORICAL:
            hint = (
                "One-hot encode the labels, or use SparseCategoricalCrossentropy for "
                "integer class labels."
            )
        rep.error(
            item.path,
            f"{raw.label}: {item.what} has shape {got}, which does not fit "
            f"{role} {format_shape(out.shape)}{uses}",
            received=got,
            hint=hint,
        )
        return None
    if loss == _BINARY and arr.size:
        low, high = arr.min(), arr.max()
        if low < 0 or high > 1:
            rep.error(
                item.path,
                f"{raw.label}: labels in {item.what} range from {low:g} to "
                f"{high:g}, but {loss_name} needs values in [0, 1]",
                received=f"min {low:g}, max {high:g}",
                hint="Use 0/1 labels (or probabilities).",
            )
            return None
    return arr.astype(np.float32, copy=False)
