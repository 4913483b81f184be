"""Changes, reads of records and denials land in the audit log, which only admins can read; the
rows are written in batches, far fewer store calls than requests."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from tests.api_harness import USER_PASSWORD, Caller, InProcessApi
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def _audit_log(api: InProcessApi, admin: Caller, **params: int) -> list[dict[str, Any]]:
    answer = await api.http.get("/api/v1/audit", params=params, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()
    return entries


def _rows_by_request(api: InProcessApi) -> dict[str, list[dict[str, Any]]]:
    """Every written audit row, by request id (straight from the database)."""
    db = sqlite3.connect(api.settings.db_path)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in db.execute("SELECT * FROM audit_log ORDER BY id")]
    finally:
        db.close()
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], []).append(row)
    return by_request


async def test_changes_and_denials_are_audited(api: InProcessApi, admin: Caller) -> None:
    name = unique("audited")
    created = await api.http.post(
        "/api/v1/users",
        json={"username": name, "password": USER_PASSWORD, "role": "viewer"},
        headers=admin.headers,
    )
    assert created.status_code == 201
    viewer = await api.login(name, USER_PASSWORD)
    denied = await api.http.get("/api/v1/users", headers=viewer)
    assert denied.status_code == 403
    anonymous = await api.http.delete("/api/v1/users/1")
    assert anonymous.status_code == 401

    entries = await _audit_log(api, admin, limit=50)
    by_request = {entry["request_id"]: entry for entry in entries}
    denial = by_request[denied.headers["x-request-id"]]
    assert (denial["username"], denial["result"], denial["action"]) == (name, 403, "list_users")
    assert by_request[anonymous.headers["x-request-id"]]["result"] == 401
    creation = next(e for e in entries if e["detail"] == f"user {name} as viewer")
    assert (creation["action"], creation["result"], creation["username"]) == (
        "create_user",
        201,
        "admin",
    )
    assert (creation["address"], creation["count"]) == ("127.0.0.1", 1)
    login = next(e for e in entries if e["action"] == "login" and e["username"] == name)
    assert login["result"] == 200


async def test_reads_of_records_are_audited_one_row_each(api: InProcessApi, admin: Caller) -> None:
    job_id = uuid.uuid4().hex
    job = {"id": job_id, "kind": "benchmark", "name": "audited", "request": {"hyperparameters": {}}}
    api.store.run_sync("enqueue_job", job=job, max_queued=10)
    api.store.run_sync("finish_job", job_id=job_id, status="cancelled")  # its stream ends at once
    audited_reads = [
        "/api/v1/models",
        "/api/v1/models/no-such-model",  # a read that finds nothing is still a read
        "/api/v1/datasets",
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/events",  # a stream: one row when it opens
        "/api/v1/users",
        f"/api/v1/users/{admin.user_id}",
        "/api/v1/config",
        "/api/v1/alerts",
    ]
    not_audited = [
        "/api/v1/health",
        "/api/v1/health/ready",
        "/api/v1/auth/me",
        "/api/v1/auth/api-keys",
        "/api/v1/openapi.json",
    ]
    sent: dict[str, str] = {}
    for path in audited_reads + not_audited:
        request_id = unique("read")
        answer = await api.http.get(path, headers={**admin.headers, "X-Request-ID": request_id})
        assert answer.status_code in (200, 404), (path, answer.text)
        sent[path] = request_id

    assert await api.state.audit.flush()
    by_request = _rows_by_request(api)
    for path in audited_reads:
        (row,) = by_request[sent[path]]
        assert (row["resource"], row["user_id"], row["count"]) == (f"GET {path}", admin.user_id, 1)
    assert by_request[sent["/api/v1/models/no-such-model"]][0]["result"] == 404
    assert by_request[sent[f"/api/v1/jobs/{job_id}/events"]][0]["action"] == "job_events"
    assert not {sent[path] for path in not_audited} & by_request.keys()


async def test_a_burst_is_written_in_a_few_batches(api: InProcessApi, admin: Caller) -> None:
    await api.state.audit.flush()  # the admin's login
    api.store.calls.clear()
    request_ids = [unique("burst") for _ in range(150)]
    for request_id in request_ids:
        answer = await api.http.get(
            "/api/v1/models", headers={**admin.headers, "X-Request-ID": request_id}
        )
        assert answer.status_code == 200
    assert api.store.calls["append_audit_batch"] == 0, "nothing is written per request"
    assert api.state.audit.waiting == 150

    assert await api.state.audit.flush()
    by_request = _rows_by_request(api)
    assert all(len(by_request[request_id]) == 1 for request_id in request_ids)
    # 150 rows in batches of at most 100, and no row written on its own.
    assert api.store.calls["append_audit_batch"] == 2
    assert api.store.calls["append_audit"] == 0
    assert api.state.audit.waiting == 0
    assert not (api.settings.data_dir / "audit-spool.jsonl").exists()


async def test_the_log_shows_what_was_answered_before_it_and_pages(
    api: InProcessApi, admin: Caller
) -> None:
    await api.new_user("viewer")  # a few entries: creating the user, logging in
    listed = await api.http.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    newest = await _audit_log(api, admin, limit=5)  # written first, though the writer never ran
    assert newest[0]["request_id"] == listed.headers["x-request-id"]
    assert newest[0]["action"] == "list_users"
    three = await _audit_log(api, admin, limit=3)
    # The read of the log before is now the newest entry: the page after it starts one later.
    assert three[0]["action"] == "list_audit_entries"
    assert (await _audit_log(api, admin, limit=2, offset=2))[0] == three[1]
