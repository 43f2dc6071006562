"""Checking loaded arrays against the model before step 1: feature shapes and dtypes
against `model.inputs` (a `string` input takes an object array of `str`, the canonical
form of text; text for a numeric input and numbers for a text one are refused), labels against the outputs and their loss (e.g. sparse labels
within the output size), and float data for NaN/inf (unless `data.allow_nonfinite`).
Every problem becomes one positioned Diagnostic."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelspec.errors import short_repr
from modelspec.runtime.data.finite import find_nonfinite
from modelspec.runtime.data.id_bounds import IdBound, check_ids
from modelspec.runtime.data.raw import RawArray, RawSource, Reporter
from modelspec.schema.losses import LOSS_ALIASES, LOSS_TYPES, LabelKind, LossSpec
from modelspec.schema.tensors import TensorType, format_shape

_SPARSE: LabelKind = "sparse"
_CATEGORICAL: LabelKind = "categorical"
_BINARY: LabelKind = "binary"
_OTHER: LabelKind = "other"


def loss_kind(spec: Any) -> tuple[str, str, int | None]:
    """(label kind, display name, ignore_class) of a loss given as a spec object, dict or
    name. The kind is the loss class's `label_kind`; a name is resolved like a spec's
    `loss:` string (class name or Keras alias), else case- and underscore-blind."""
    if isinstance(spec, LossSpec):
        return spec.label_kind, spec.type, getattr(spec, "ignore_class", None)
    if isinstance(spec, dict):
        name, ignore = spec.get("type"), spec.get("ignore_class")
    else:
        name = spec if isinstance(spec, str) else getattr(spec, "type", None)
        ignore = getattr(spec, "ignore_class", None)
    name = str(name or "")
    cls = _loss_class(name)
    return (cls.label_kind if cls is not None else _OTHER), name, ignore


def _loss_class(name: str) -> type[LossSpec] | None:
    if name in LOSS_ALIASES:
        return LOSS_TYPES[LOSS_ALIASES[name]]
    squashed = name.replace("_", "").lower()
    return next((cls for t, cls in LOSS_TYPES.items() if t.lower() == squashed), None)


def _dims_match(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(got) == len(want) and all(
        w is None or g == w for g, w in zip(got, want, strict=True)
    )


def _shape_n(shape: tuple[int, ...]) -> str:
    return format_shape(("N", *shape))  # type: ignore[arg-type]


def check_arrays(
    raw: RawSource,
    model_inputs: dict[str, TensorType],
    model_outputs: dict[str, TensorType],
    losses: dict[str, tuple[str, str, int | None]],
    rep: Reporter,
    *,
    allow_nonfinite: bool = False,
    id_limits: dict[str, IdBound] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """Check and cast every array of `raw`; None when anything was reported.

    Unless `allow_nonfinite`, float features and the float targets of non-sparse losses
    must be finite in the dtype they are cast to (sparse labels are checked to be
    integers anyway). `id_limits`: the inputs an Embedding reads, whose ids must lie
    in its vocabulary (`id_bounds`)."""
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
        bound = (id_limits or {}).get(name)
        want = model_inputs[name]
        inputs[name] = _check_input(raw, name, item, want, rep, allow_nonfinite, bound)
    kinds = {name: losses.get(name, (_OTHER, "", None)) for name in raw.targets}
    targets = {}
    for name, item in raw.targets.items():
        targets[name] = _check_target(
            raw, name, item, model_outputs[name], kinds[name], rep, allow_nonfinite
        )
    if len(rep.diagnostics) > before:
        return None
    return inputs, targets  # type: ignore[return-value]


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
    first = _first_text(item)
    if first is not None:
        rep.error(
            item.path,
            f"{raw.label}: {item.what} has dtype {item.array.dtype}, which is not numeric "
            f"({role}): it holds text ({first})",
            received=str(item.array.dtype),
            hint="Feed text to an input declared `dtype: string` (read by a text layer), "
            "or encode it as numbers.",
        )
        return True
    rep.error(
        item.path,
        f"{raw.label}: {item.what} has dtype {item.array.dtype}, which is not numeric ({role})",
        received=str(item.array.dtype),
        hint="Store numbers (encode categories and text as integers first).",
    )
    return True


def _row(item: RawArray, flat_index: int) -> str:
    """The row of the `flat_index`-th element of `item`, as users find it in the file."""
    row = int(np.unravel_index(flat_index, item.array.shape)[0])
    return f"row {row + 1} (line {item.lines[row]})" if item.lines else f"sample {row}"


def _first_text(item: RawArray) -> str | None:
    """`'value' in row r (line l)` for the first `str` of a text or object array."""
    if item.array.dtype.kind == "U":
        if not item.array.size:
            return "str"
        return f"{short_repr(str(item.array.reshape(-1)[0]))} in {_row(item, 0)}"
    if item.array.dtype.kind != "O":
        return None
    for i, value in enumerate(item.array.reshape(-1)):
        if isinstance(value, str):
            return f"{short_repr(value)} in {_row(item, i)}"
    return None


def _check_text(
    raw: RawSource, name: str, item: RawArray, want: TensorType, rep: Reporter
) -> np.ndarray | None:
    """A `string` input's array as an object array of `str` (NumPy `U` arrays are
    converted); None, reported with the first offending row, for anything else."""
    role = f"model input {name!r}"
    arr = item.array
    if arr.ndim == 0:
        rep.error(
            item.path,
            f"{raw.label}: {item.what} is a scalar; {role} needs one row per example",
            received=f"shape {arr.shape}",
        )
        return None
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    bad = None
    if arr.dtype.kind == "O":
        bad = next((i for i, v in enumerate(arr.reshape(-1)) if not isinstance(v, str)), None)
    if arr.dtype.kind != "O" or bad is not None:
        value = arr.reshape(-1)[bad] if bad is not None else None
        found = (
            f"{short_repr(value)} in {_row(item, bad)}" if bad is not None else f"dtype {arr.dtype}"
        )
        rep.error(
            item.path,
            f"{raw.label}: {item.what} holds {found}, but {role} has dtype string and "
            "takes text only",
            received=short_repr(value) if bad is not None else str(arr.dtype),
            hint="Map a text column to it (every value a string), or declare the input "
            "with a numeric dtype.",
        )
        return None
    if not _dims_match(arr.shape[1:], want.shape[1:]):
        rep.error(
            item.path,
            f"{raw.label}: {item.what} has shape {_shape_n(arr.shape[1:])} but {role} "
            f"expects {format_shape(want.shape)}",
            received=_shape_n(arr.shape[1:]),
            hint="A text input takes one string per example: shape [] (or [1]).",
        )
        return None
    return arr


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _check_input(
    raw: RawSource,
    name: str,
    item: RawArray,
    want: TensorType,
    rep: Reporter,
    allow_nonfinite: bool,
    bound: IdBound | None = None,
) -> np.ndarray | None:
    if want.dtype == "string":
        return _check_text(raw, name, item, want, rep)
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
        elif bound is not None and not check_ids(raw, name, item, bound, low, high, rep):
            return None
    if problem is not None:
        ok = False
        rep.error(
            item.path,
            f"{raw.label}: {item.what} {problem[0]}, but {role} has dtype {want.dtype}",
            received=problem[1],
            hint=f"{problem[2]} in model.inputs.{name}.dtype.",
        )
    # ints only overflow a float dtype as narrow as float16
    could_overflow = arr.dtype.kind == "f" or (arr.dtype.kind in "iu" and dtype.itemsize <= 2)
    is_float = dtype.kind == "f" or dtype.name == "bfloat16"  # ml_dtypes: kind "V"
    if ok and not allow_nonfinite and is_float and could_overflow:
        ok = _finite(raw, item, dtype, role, rep)
    return arr.astype(dtype, copy=False) if ok else None


def _finite(raw: RawSource, item: RawArray, dtype: np.dtype, role: str, rep: Reporter) -> bool:
    """Report (and return False) when `item` holds values that are not finite as `dtype`."""
    found = find_nonfinite(item.array, dtype)
    if found is None:
        return True
    row, *inner = found.index
    where = f"row {row + 1} (line {item.lines[row]})" if item.lines else f"sample {row}"
    if item.columns is not None and len(inner) == 1:
        where += f", column {item.columns[inner[0]]}"
    elif len(inner) == 1:
        where += f", feature {inner[0]}"
    elif inner:
        where += f", index {tuple(inner)}"
    wider = item.array.dtype.kind != "f" or item.array.dtype.itemsize > dtype.itemsize
    kinds = f"NaN, ±inf, or too large for {dtype}" if wider else "NaN or ±inf"
    count = "1 value that is" if found.count == 1 else f"{found.count} values that are"
    rep.error(
        item.path,
        f"{raw.label}: {item.what} holds {count} not finite ({kinds}) for "
        f"{role}; the first is in {where}",
        received=found.value,
        hint="One NaN turns the loss into NaN within a step. Fix or drop those rows, or "
        "set `data.allow_nonfinite: true` if the data legitimately holds them.",
    )
    return False


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
    allow_nonfinite: bool,
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
        if hasattr(arr, "value_range"):  # read lazily (token windows): scanned in chunks
            low, high = arr.value_range(exclude=ignore_class)
        else:
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
    if not allow_nonfinite and arr.dtype.kind == "f":
        if not _finite(raw, item, np.dtype(np.float32), role, rep):
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
