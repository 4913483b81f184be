"""State changes and denials land in the audit log, which only admins can read."""

from __future__ import annotations

import httpx

from cvplatform.client import Client
from tests.helpers import unique
from tests.integration.conftest import LivePlatform


def test_changes_and_denials_are_audited(platform: LivePlatform, admin: Client) -> None:
    name = unique("audited")
    admin.create_user(name, "user-password-for-tests", "viewer")
    viewer = platform.login(name, "user-password-for-tests")
    denied = httpx.get(
        f"{platform.url}/api/v1/users", headers=dict(viewer._http.headers), timeout=10
    )
    assert denied.status_code == 403
    anonymous = httpx.delete(f"{platform.url}/api/v1/users/1")
    assert anonymous.status_code == 401

    entries = admin.audit_log(limit=50)
    by_request = {entry.request_id: entry for entry in entries}
    denial = by_request[denied.headers["x-request-id"]]
    assert (denial.username, denial.result, denial.action) == (name, 403, "list_users")
    assert by_request[anonymous.headers["x-request-id"]].result == 401
    creation = next(e for e in entries if e.detail == f"user {name} as viewer")
    assert (creation.action, creation.result, creation.username) == ("create_user", 201, "admin")
    login = next(e for e in entries if e.action == "login" and e.username == name)
    assert login.result == 200
    viewer.close()


def test_reads_are_not_audited_and_the_log_pages(admin: Client) -> None:
    admin.list_users()
    newest = admin.audit_log(limit=5)
    assert all(entry.action != "list_users" or entry.result == 403 for entry in newest)
    assert admin.audit_log(limit=2, offset=1)[0] == admin.audit_log(limit=3)[1]
