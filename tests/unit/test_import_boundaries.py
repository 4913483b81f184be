"""The layering of design.md, enforced twice: by reading every import statement, and by importing
each pure module in a fresh interpreter to see what it really loads."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("cvplatform", "store", "actors", "tune_space", "serve_apps", "tui")
# Which of the platform's packages each package may import.
ALLOWED = {
    "cvplatform": {"cvplatform"},
    "store": {"cvplatform", "store"},
    "actors": {"cvplatform", "store", "actors"},
    "tune_space": {"cvplatform", "tune_space", "actors"},
    "serve_apps": {"cvplatform", "store", "actors", "tune_space", "serve_apps"},
    "tui": {"cvplatform", "tui"},
}
# The shells that start or talk to Ray; everything else in these packages is plain code.
RAY_SHELLS = {
    "actors/conversion_task.py",
    "actors/dataset_task.py",
    "actors/training_task.py",
    "actors/scheduler.py",
    "actors/background.py",
    "actors/supervision.py",
    "cvplatform/bootstrap.py",
    "store/actor.py",
    "serve_apps/api/server.py",
}
# cvplatform's bootstrap and CLI wire the whole platform together.
WIRING = {"cvplatform/bootstrap.py", "cvplatform/cli.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_layering(path: Path) -> None:
    relative = str(path.relative_to(ROOT))
    package = relative.split("/")[0]
    imported = _imports(path)
    if relative not in WIRING:
        reached = imported & set(PACKAGES)
        assert reached <= ALLOWED[package], f"{relative} imports {reached - ALLOWED[package]}"
    if relative not in RAY_SHELLS:
        assert "ray" not in imported, f"{relative} is plain code: keep Ray in its shell"
    if package != "tui":
        assert "textual" not in imported
    assert "tensorrt" not in imported or relative.startswith("cvplatform/engines/")


PURE_MODULES = [
    "cvplatform.config",
    "cvplatform.errors",
    "cvplatform.schemas",
    "cvplatform.client",
    "cvplatform.gpu",
    "cvplatform.jsonlog",
    "store.writer",
    "store.queries",
    "store.backup",
    "store.artifacts",
    "serve_apps.auth.policy",
    "serve_apps.auth.tokens",
    "serve_apps.auth.passwords",
    "serve_apps.auth.api_keys",
    "serve_apps.api.app",  # the management API builds without Ray
    "actors.models.formats",
    "actors.models.onnx_inspect",
    "actors.models.parity",
    "actors.models.conversion",
    "actors.datasets.layouts",
    "actors.datasets.validate",
    "actors.datasets.preprocess",
    "actors.datasets.samples",
    "actors.training.metrics",
    "cvplatform.archives",
    "tune_space",
    "tui",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_loads_no_runtime(module: str) -> None:
    probe = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted(m for m in ('ray', 'textual', 'tensorrt', 'torch') "
        "if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(loaded.stdout) == [], f"{module} loaded {loaded.stdout.strip()}"
