"""User management through the API: create, list, show, change role, delete, and refusals."""

from __future__ import annotations

import pytest

from cvplatform.errors import AuthError, DuplicateRecord, LastAdminError, NotFound
from tests.api_harness import USER_PASSWORD, Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def test_create_list_show_change_delete(api: InProcessApi, admin: Caller) -> None:
    name = unique("dana")
    answer = await api.http.post(
        "/api/v1/users",
        json={"username": name, "password": USER_PASSWORD, "role": "engineer"},
        headers=admin.headers,
    )
    assert answer.status_code == 201
    created = answer.json()
    assert (created["username"], created["role"]) == (name, "engineer")
    assert created["created_by"] == admin.user_id
    user_path = f"/api/v1/users/{created['id']}"
    assert (await api.http.get(user_path, headers=admin.headers)).json() == created
    listed = (await api.http.get("/api/v1/users", headers=admin.headers)).json()
    assert created["id"] in [user["id"] for user in listed]
    changed = await api.http.patch(user_path, json={"role": "viewer"}, headers=admin.headers)
    assert changed.json()["role"] == "viewer"
    assert (await api.http.delete(user_path, headers=admin.headers)).status_code == 204
    for gone in (
        await api.http.get(user_path, headers=admin.headers),
        await api.http.delete(user_path, headers=admin.headers),
    ):
        assert gone.status_code == 404
        assert error_of(gone, NotFound)["code"] == "not_found"


async def test_deleted_users_credentials_stop_working(
    api: InProcessApi, admin: Caller, engineer: Caller
) -> None:
    key = await api.api_key(engineer.headers, "k")
    deleted = await api.http.delete(f"/api/v1/users/{engineer.user_id}", headers=admin.headers)
    assert deleted.status_code == 204
    for dead in (engineer.headers, {"X-API-Key": key["key"]}):
        refused = await api.http.get("/api/v1/auth/me", headers=dead)
        assert refused.status_code == 401, dead
        error_of(refused, AuthError)


async def test_duplicate_username_is_409(api: InProcessApi, admin: Caller) -> None:
    name = unique("dup")
    for username, status in ((name, 201), (name.upper(), 409)):
        answer = await api.http.post(
            "/api/v1/users",
            json={"username": username, "password": USER_PASSWORD, "role": "viewer"},
            headers=admin.headers,
        )
        assert answer.status_code == status
    assert error_of(answer, DuplicateRecord)["code"] == "duplicate"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "x1x", "password": USER_PASSWORD, "role": "superuser"}, "body.role"),
        ({"username": "ok-name", "password": "short", "role": "viewer"}, "body.password"),
        ({"username": "bad name!", "password": USER_PASSWORD, "role": "viewer"}, "body.username"),
        ({"username": "ok-name", "password": "é" * 40, "role": "viewer"}, "body.password"),
        ({"username": "ok-name", "password": USER_PASSWORD}, "body.role"),
    ],
)
async def test_invalid_user_requests_name_the_field(
    api: InProcessApi, admin: Caller, body: dict[str, str], field: str
) -> None:
    answer = await api.http.post("/api/v1/users", json=body, headers=admin.headers)
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    assert [entry["location"] for entry in answer.json()["error"]["fields"]] == [field]


async def test_unknown_role_on_change_is_422(
    api: InProcessApi, admin: Caller, viewer: Caller
) -> None:
    user_path = f"/api/v1/users/{viewer.user_id}"
    answer = await api.http.patch(user_path, json={"role": "god"}, headers=admin.headers)
    assert answer.status_code == 422
    assert (await api.http.get(user_path, headers=admin.headers)).json()["role"] == "viewer"


async def test_last_admin_is_kept(api: InProcessApi, admin: Caller) -> None:
    users = (await api.http.get("/api/v1/users", headers=admin.headers)).json()
    assert [user["id"] for user in users if user["role"] == "admin"] == [admin.user_id]
    admin_path = f"/api/v1/users/{admin.user_id}"
    deleting = await api.http.delete(admin_path, headers=admin.headers)
    assert deleting.status_code == 409
    assert error_of(deleting, LastAdminError)["code"] == "last_admin"
    demoting = await api.http.patch(admin_path, json={"role": "engineer"}, headers=admin.headers)
    assert demoting.status_code == 409
    assert error_of(demoting, LastAdminError)["code"] == "last_admin"
    assert (await api.http.get(admin_path, headers=admin.headers)).json()["role"] == "admin"
