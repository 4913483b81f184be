"""User management through the API: create, list, show, change role, delete, and refusals."""

from __future__ import annotations

import httpx
import pytest

from cvplatform.client import Client
from cvplatform.errors import DuplicateRecord, LastAdminError, NotFound
from tests.helpers import unique
from tests.integration.conftest import USER_PASSWORD, LivePlatform


def test_create_list_show_change_delete(platform: LivePlatform, admin: Client) -> None:
    name = unique("dana")
    created = admin.create_user(name, USER_PASSWORD, "engineer")
    assert created.created_by == admin.me().user_id
    assert admin.get_user(created.id) == created
    assert created.id in [user.id for user in admin.list_users()]
    assert admin.set_role(created.id, "viewer").role == "viewer"
    admin.delete_user(created.id)
    with pytest.raises(NotFound):
        admin.get_user(created.id)
    with pytest.raises(NotFound):
        admin.delete_user(created.id)


def test_deleted_users_credentials_stop_working(platform: LivePlatform, admin: Client) -> None:
    user, client = platform.new_user("engineer")
    key = client.create_api_key("k").key
    admin.delete_user(user.id)
    for dead in (client, Client(platform.url, api_key=key)):
        with pytest.raises(Exception) as refused:
            dead.me()
        assert getattr(refused.value, "http_status", None) == 401
        dead.close()


def test_duplicate_username_is_409(platform: LivePlatform, admin: Client) -> None:
    name = unique("dup")
    admin.create_user(name, USER_PASSWORD, "viewer")
    with pytest.raises(DuplicateRecord) as duplicate:
        admin.create_user(name.upper(), USER_PASSWORD, "viewer")
    assert duplicate.value.http_status == 409  # type: ignore[attr-defined]


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
def test_invalid_user_requests_name_the_field(
    platform: LivePlatform, admin: Client, body: dict[str, str], field: str
) -> None:
    token = admin._http.headers["authorization"]
    answer = httpx.post(f"{platform.url}/api/v1/users", json=body, headers={"Authorization": token})
    assert answer.status_code == 422
    assert [entry["location"] for entry in answer.json()["error"]["fields"]] == [field]


def test_unknown_role_on_change_is_422(platform: LivePlatform, admin: Client) -> None:
    user = admin.create_user(unique("r"), USER_PASSWORD, "viewer")
    answer = httpx.patch(
        f"{platform.url}/api/v1/users/{user.id}",
        json={"role": "god"},
        headers={"Authorization": admin._http.headers["authorization"]},
    )
    assert answer.status_code == 422
    assert admin.get_user(user.id).role == "viewer"


def test_last_admin_is_kept(platform: LivePlatform, admin: Client) -> None:
    admins = [user for user in admin.list_users() if user.role == "admin"]
    assert len(admins) == 1, "this test needs the platform's only admin"
    only_admin = admins[0]
    with pytest.raises(LastAdminError) as deleting:
        admin.delete_user(only_admin.id)
    assert deleting.value.http_status == 409  # type: ignore[attr-defined]
    with pytest.raises(LastAdminError):
        admin.set_role(only_admin.id, "engineer")
    assert admin.get_user(only_admin.id).role == "admin"
