"""The runtime's import rules (stated in each package's `__init__`): the concept packages
(`data`, `objective`, `optim`) never import the loop modules or each other, and the
callback implementations do not import the session. Checked on the source, so a new
upward import fails here rather than as an import cycle later."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNTIME = ROOT / "modelspec" / "runtime"
PACKAGES = ("data", "objective", "optim")


def _runtime_imports(path: Path) -> set[str]:
    """`modelspec.runtime.*` modules a file imports (at any depth), as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "modelspec.runtime":
                found |= {f"modelspec.runtime.{a.name}" for a in node.names}
            elif node.module.startswith("modelspec.runtime."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("modelspec.runtime.")}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_concept_packages_import_only_themselves(package):
    own = f"modelspec.runtime.{package}"
    assert (RUNTIME / package / "__init__.py").read_text().count("Import rule") == 1
    for path in sorted((RUNTIME / package).glob("*.py")):
        outside = {m for m in _runtime_imports(path) if m != own and not m.startswith(own + ".")}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_callbacks_hold_only_implementations():
    """Callbacks may use the concept packages (LearningRateScheduler evaluates the
    `optim` schedules), never the loop modules or the session."""
    imports = _runtime_imports(RUNTIME / "callbacks.py")
    loops = {m for m in imports if m.split(".")[2] not in PACKAGES}
    assert not loops, f"runtime/callbacks.py imports {sorted(loops)}"


def test_flat_runtime_holds_only_loop_modules():
    flat = {p.stem for p in RUNTIME.glob("*.py")} - {"__init__"}
    moved = {"data", "sources", "losses", "metrics", "objectives", "optimizers", "schedules"}
    assert not flat & moved, f"concept modules back in runtime/: {sorted(flat & moved)}"
