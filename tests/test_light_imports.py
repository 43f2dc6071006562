"""`--help`, `check`, `summary` and `schema` must not import JAX, Flax, optax or orbax:
specs are checked in CI pipelines where a 2-second import per call adds up."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax", "keras", "tensorflow", "torch")

PROBE = """
import sys
sys.argv = ["modelspec", *{args!r}]
from modelspec.cli import app
try:
    app()
except SystemExit as exc:
    code = exc.code
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code or 0)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["check", "specs/text_classifier.yaml", "specs/resnet_small.yaml"],
        ["summary", "specs/transformer_encoder.yaml"],
        ["summary", "--format", "json", "specs/text_classifier.yaml"],
        ["summary", "--mesh", "data=2,fsdp=2,tensor=2", "specs/transformer_encoder.yaml"],
        ["schema"],
        ["check", "tests/data/bad_spec.yaml"],
    ],
    ids=["help", "check", "summary", "summary_json", "summary_mesh", "schema", "check_failing"],
)
def test_light_commands_do_not_import_jax(root, args):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 2), proc.stderr
    heavy_line = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy_line == ["HEAVY="], proc.stderr[-2000:]


def import_fresh(root, modules: list[str]) -> subprocess.CompletedProcess:
    """Import `modules` in a new interpreter (this one has JAX loaded already); its
    stdout is the sorted list of the HEAVY packages that came in with them."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )


def module_names(root, files) -> list[str]:
    """Dotted module names of the .py `files` (found on disk, so new ones are covered)."""
    names = [".".join(f.relative_to(root).with_suffix("").parts) for f in sorted(files)]
    return [n.removesuffix(".__init__") for n in names]


def test_package_import_is_light(root):
    out = import_fresh(root, ["modelspec", "modelspec.schema.spec"])
    assert out.stdout.strip() == "[]", out.stderr


def schema_modules(root) -> list[str]:
    """Every module under modelspec/schema/, found on disk (new ones are covered too)."""
    return module_names(root, (root / "modelspec" / "schema").rglob("*.py"))


def test_every_schema_module_is_light(root):
    """The specs (and the layer contract: tensors, shape math, every family) are pure
    Python: importing any module of modelspec.schema must not pull in JAX."""
    modules = schema_modules(root)
    for needed in (
        "modelspec.schema.tensors",
        "modelspec.schema.layers.shape_math",
        "modelspec.schema.vocabulary",
        "modelspec.schema.metric_base",
        "modelspec.schema.metrics_accuracy",
        "modelspec.schema.metrics_confusion",
        "modelspec.schema.metrics_regression",
        "modelspec.schema.metrics_losslike",
    ):
        assert needed in modules
    out = import_fresh(root, modules)
    assert out.stdout.strip() == "[]", out.stderr


def test_runtime_data_is_light(root):
    """runtime.data reads and checks data with numpy alone (its import rule): loading a
    spec's data never waits for JAX."""
    modules = module_names(root, (root / "modelspec" / "runtime" / "data").glob("*.py"))
    assert "modelspec.runtime.data.dataset" in modules
    out = import_fresh(root, modules)
    assert out.stdout.strip() == "[]", out.stderr
