"""The API server actor logs each request, with its request id, to ``logs/api.log``.

The error shapes themselves, and the log line's fields, are tested in-process in
``tests/api/test_api_errors.py``; what needs the actor is that its logging is set up.
"""

from __future__ import annotations

import json

import httpx

from tests.helpers import unique, wait_for
from tests.integration.conftest import LivePlatform


def test_the_api_actor_logs_each_request_to_its_file(platform: LivePlatform) -> None:
    request_id = unique("trace-")
    answer = httpx.get(f"{platform.url}/api/v1/no-such-thing", headers={"X-Request-ID": request_id})
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == request_id

    def logged_line() -> dict[str, object]:
        log_lines = (platform.settings.log_dir / "api.log").read_text().splitlines()
        logged = [json.loads(line) for line in log_lines if request_id in line]
        assert logged, f"no line with {request_id} in api.log"
        return logged[-1]  # type: ignore[no-any-return]

    line = wait_for(logged_line, timeout_s=10)
    assert (line["status"], line["path"], line["request_id"]) == (
        404,
        "/api/v1/no-such-thing",
        request_id,
    )
