"""modelspec: Keras-vocabulary model specs (YAML/JSON), validated and compiled to JAX.

    import modelspec
    spec = modelspec.load("specs/text_classifier.yaml")    # validated, shapes checked
    model = modelspec.build(spec)                            # a Flax NNX module

Importing this package is light: JAX is imported only by `build`, `train` and friends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelspec.errors import DataError, Diagnostic, SpecError

if TYPE_CHECKING:
    from modelspec.compiler.checked import CheckedSpec

__version__ = "0.1.0"
__all__ = [
    "load",
    "build",
    "summary",
    "train",
    "evaluate",
    "predict",
    "SpecError",
    "DataError",
    "Diagnostic",
    "__version__",
]


def load(source: Any, overrides: list[str] | tuple = ()) -> CheckedSpec:
    """Validate a spec (a path, a mapping, a Spec or a CheckedSpec) with optional
    `--set` style overrides; raises SpecError listing every problem, positioned. The
    CheckedSpec holds the spec (its sections read through: `.model`, `.data`), the
    resolved `.graph`, the inferred `.shapes` and the `.source` map."""
    from modelspec.compiler.load import load as _load

    return _load(source, overrides)


def build(spec: Any, *, seed: int | None = None):
    """Compile a spec into a Flax NNX module (`CompiledModel`). Split it into pure pytrees
    with `modelspec.compiler.model.split`."""
    from modelspec.compiler.model import build as _build

    return _build(spec, seed=seed)


def summary(spec: Any) -> dict[str, Any]:
    """The summary as data: layers, output shapes, parameter counts."""
    from modelspec.compiler.summary import summarize

    return summarize(load(spec))


def train(source: Any, run_dir: Any = None, overrides: list[str] | tuple = (), **kwargs: Any):
    """Train a spec (path, mapping or Spec) like `modelspec train`; rerunning with the
    same run directory resumes. Returns the History: `.epochs` (one dict per epoch, as
    in metrics.jsonl), `.summary`, `.state`. Keyword options: restart, progress,
    devices."""
    from modelspec.runtime.trainer import train as _train

    return _train(source, run_dir, overrides, **kwargs)


def evaluate(source: Any, run_dir: Any, overrides: list[str] | tuple = (), **kwargs: Any):
    """Loss and metrics of a run's latest checkpoint (like `modelspec evaluate`)."""
    from modelspec.runtime.inference import evaluate as _evaluate

    return _evaluate(source, run_dir, overrides, **kwargs)


def predict(
    source: Any,
    run_dir: Any,
    input_path: Any,
    output_path: Any,
    overrides: list[str] | tuple = (),
    **kwargs: Any,
):
    """Outputs of a trained model on an .npz of named inputs (like `modelspec predict`).
    Keyword options: batch_size, allow_spec_change."""
    from modelspec.runtime.inference import predict as _predict

    return _predict(source, run_dir, input_path, output_path, overrides, **kwargs)
