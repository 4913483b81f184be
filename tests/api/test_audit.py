"""State changes and denials land in the audit log, which only admins can read."""

from __future__ import annotations

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
    login = next(e for e in entries if e["action"] == "login" and e["username"] == name)
    assert login["result"] == 200


async def test_reads_are_not_audited_and_the_log_pages(api: InProcessApi, admin: Caller) -> None:
    await api.new_user("viewer")  # a few entries: creating the user, logging in
    listed = await api.http.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    newest = await _audit_log(api, admin, limit=5)
    assert newest, "the user's creation and logins are audited"
    assert all(entry["action"] != "list_users" or entry["result"] == 403 for entry in newest)
    second_of_three = (await _audit_log(api, admin, limit=3))[1]
    assert (await _audit_log(api, admin, limit=2, offset=1))[0] == second_of_three
