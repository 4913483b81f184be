"""A fixed stored benchmark renders to the committed golden files in all four formats and both
views, byte for byte, and a second process renders the same bytes (see ``tests/reports/golden.py``
for how the files are made)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cvplatform.reports.data_formats import report_json_schema
from cvplatform.reports.render import FORMATS, VIEWS, render
from tests.reports.golden import ROOT_DIR, SCHEMA, digests, fixed_input, golden_path


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("view", VIEWS)
def test_the_fixed_benchmark_renders_to_its_golden_file(view: str, format: str) -> None:
    rendered = render(fixed_input(), view, format)  # type: ignore[arg-type]
    expected = golden_path(view, format).read_bytes()
    assert rendered == expected, (
        f"{view}.{format} differs from its golden file: look at the new rendering, then "
        "rewrite them with `.venv/bin/python -m tests.reports.golden`"
    )


def test_another_process_renders_the_same_bytes() -> None:
    probe = "import json; from tests.reports.golden import digests; print(json.dumps(digests()))"
    other = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT_DIR
    )
    assert json.loads(other.stdout) == digests()


def test_the_published_json_schema_is_the_one_the_code_makes() -> None:
    assert json.loads(SCHEMA.read_text()) == report_json_schema()
