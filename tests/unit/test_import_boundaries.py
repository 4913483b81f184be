"""The layering of design.md. It is written down once, as import-linter contracts in pyproject.toml
([tool.importlinter], checked by `make contracts`); this file checks that they are kept, and what
import-linter cannot see: what a plain module really loads when it is imported (import-linter
counts an import inside a function like one at the top of the module)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
_CONTRACTS: list[dict[str, Any]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"
]["contracts"]


def _contract(contract_id: str) -> dict[str, Any]:
    return next(contract for contract in _CONTRACTS if contract["id"] == contract_id)


# The modules that import Ray themselves, read from the one list there is: the "pure-no-ray"
# contract's `<shell> -> ray` lines.
RAY_SHELLS = frozenset(
    line.partition("->")[0].strip() for line in _contract("pure-no-ray")["ignore_imports"]
)


def test_import_contracts_are_kept() -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-logo", "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


# Plain modules that must load none of Ray, Textual, TensorRT or PyTorch when imported.
PURE_MODULES = [
    "cvplatform.config",
    "cvplatform.errors",
    "cvplatform.schemas",
    "cvplatform.client",
    "cvplatform.client_uploads",
    "cvplatform.gpu",
    "cvplatform.client_benchmarks",
    "cvplatform.engines",  # TensorRT loads only when its engine opens a model on a GPU
    "cvplatform.benchmarking.constraints",
    "cvplatform.benchmarking.measure",
    "cvplatform.benchmarking.plan",
    "cvplatform.benchmarking.resources",
    "cvplatform.benchmarking.selection",
    "cvplatform.benchmarking.stats",
    "cvplatform.reports.render",
    "cvplatform.reports.html",
    "cvplatform.reports.pdf",
    "cvplatform.inference.payloads",
    "cvplatform.inference.preprocessing",
    "cvplatform.inference.postprocessing",
    "cvplatform.jsonlog",
    "store.writer",
    "store.queries",
    "store.backup",
    "store.artifacts",
    "serve_apps.auth.policy",
    "serve_apps.auth.tokens",
    "serve_apps.auth.passwords",
    "serve_apps.auth.api_keys",
    "serve_apps.auth.check_queue",
    "serve_apps.auth.throttle",
    "serve_apps.api.app",  # the management API builds without Ray
    "serve_apps.api.resumable",
    "serve_apps.api.tus",
    "actors.jobs.registry",
    "actors.jobs.reporter",
    "actors.jobs.scheduling",
    "actors.models.formats",
    "actors.models.onnx_inspect",
    "actors.models.parity",
    "actors.models.conversion",
    "actors.models.architectures",  # the API checks an upload's architecture with it
    "actors.models.unsafe_ops",
    "actors.models.graph_inspection",
    "actors.models.sandbox",
    "actors.models.sandbox_run",  # the conversion job: PyTorch loads in its worker only
    "actors.datasets.layouts",
    "actors.datasets.validate",
    "actors.datasets.preprocess",
    "actors.datasets.samples",
    "actors.training.metrics",
    "cvplatform.archives",
    "tune_space",
    "tune_space.space",
    "tune_space.genetic",  # the GA itself: only its Tune adapter and driver import Ray
    "tune_space.results",  # the API builds a search's page with it
    "tune_space.trials",
    "cvplatform.client_optimizations",
    "tui",
]


def test_pure_modules_are_not_ray_shells() -> None:
    assert not RAY_SHELLS & set(PURE_MODULES)


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
