"""The golden files: a fixed stored benchmark rendered in every format of both views.

``tests/reports/fixtures/report_input.json`` is the input a real benchmark on this project's CI
machine stored (a ResNet18 trained on the digits sample, every engine at batch 1 and 8). Its
renderings are committed under ``tests/reports/golden/``; the tests compare bytes. After a change
to how reports look, look at the new renderings, then rewrite them with

    .venv/bin/python -m tests.reports.golden
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.render import FORMATS, VIEWS, render

HERE = Path(__file__).parent
INPUT = HERE / "fixtures" / "report_input.json"
GOLDEN = HERE / "golden"
ROOT_DIR = HERE.parents[1]
SCHEMA = ROOT_DIR / "docs" / "report.schema.json"


def fixed_input() -> ReportInput:
    return ReportInput.model_validate_json(INPUT.read_text())


def golden_path(view: str, format: str) -> Path:
    return GOLDEN / f"{view}.{format}"


def digests() -> dict[str, str]:
    """sha256 of every rendering of the fixed input (what a second process compares)."""
    report = fixed_input()
    return {
        f"{view}.{format}": hashlib.sha256(render(report, view, format)).hexdigest()
        for view in VIEWS
        for format in FORMATS
    }


def rewrite() -> None:
    from cvplatform.reports.data_formats import report_json_schema

    report = fixed_input()
    GOLDEN.mkdir(exist_ok=True)
    for view in VIEWS:
        for format in FORMATS:
            golden_path(view, format).write_bytes(render(report, view, format))
    SCHEMA.write_text(json.dumps(report_json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    rewrite()
