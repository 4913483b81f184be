"""The README's Python snippet runs against a live platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import unique
from tests.integration.conftest import ADMIN_PASSWORD, LivePlatform
from tests.unit.test_docs import ROOT, code_blocks


def test_readme_python_snippet_runs(
    platform: LivePlatform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (snippet,) = code_blocks((ROOT / "README.md").read_text(), "python")
    password_file = tmp_path / "admin-password.txt"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    name = unique("alice")
    runnable = (
        snippet.replace("http://127.0.0.1:8080", platform.url)
        .replace(".cvp-data/admin-password.txt", str(password_file))
        .replace('"alice"', repr(name))
    )
    exec(compile(runnable, "README.md", "exec"), {})  # noqa: S102 (our own README)
    assert f"username='{name}'" in capsys.readouterr().out
