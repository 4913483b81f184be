"""The README starts with the two commands, and the API docs cover every route."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import route_table

ROOT = Path(__file__).parents[2]


def code_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.DOTALL)


def test_readme_first_block_is_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```\w*\n(.*?)```", readme, flags=re.DOTALL)
    assert first_block is not None
    assert first_block.group(1) == "make run\nmake test\n"
    for document in ("docs/architecture.md", "docs/api.md", "docs/deployment.md"):
        assert document in readme
        assert (ROOT / document).is_file()


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_api_doc_covers_every_route() -> None:
    documented = set(
        re.findall(
            r"^### (GET|HEAD|OPTIONS|POST|PUT|PATCH|DELETE) (\S+)$",
            (ROOT / "docs" / "api.md").read_text(),
            flags=re.MULTILINE,
        )
    )
    routes = {(method, route.path) for method, _, route in route_table()}
    assert routes - documented == set(), "document these routes in docs/api.md"
    assert documented - routes == set(), "docs/api.md documents routes that do not exist"
