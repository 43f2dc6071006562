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


def test_package_import_is_light(root):
    code = (
        "import sys, modelspec, modelspec.schema.spec; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr
