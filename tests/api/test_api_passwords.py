"""Password changes and resets: through the API, the SDK and `cvp user reset-password`.

A changed password ends every login session of its user at once; API keys stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from cvplatform.cli import main
from cvplatform.client import Client
from cvplatform.errors import (
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    TokenRevoked,
    WrongPassword,
)
from serve_apps.api.app import create_app
from tests.api_harness import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Caller,
    InProcessApi,
    error_of,
    in_process_platform,
)

pytestmark = pytest.mark.anyio

ME = "/api/v1/auth/me"
CHANGE = "/api/v1/auth/password"
NEW_PASSWORD = "a-brand-new-password"


def _reset_path(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/password"


async def _status_of_login(api: InProcessApi, username: str, password: str) -> int:
    answer = await api.http.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return answer.status_code


async def _audit_entries(api: InProcessApi, admin: Caller) -> list[dict[str, Any]]:
    await api.state.audit.flush()  # rows are written in batches
    answer = await api.http.get("/api/v1/audit", params={"limit": 100}, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()
    return entries


async def _refused_as_revoked(api: InProcessApi, headers: dict[str, str]) -> None:
    answer = await api.http.get(ME, headers=headers)
    assert answer.status_code == 401, answer.text
    assert error_of(answer, TokenRevoked)["code"] == "token_revoked"


async def test_own_change_ends_every_session_keeps_keys_and_answers_a_fresh_token(
    api: InProcessApi, admin: Caller, engineer: Caller
) -> None:
    other_session = await api.login(engineer.username, USER_PASSWORD)
    key = await api.api_key(engineer.headers, "kept")
    assert (await api.http.get(ME, headers=other_session)).status_code == 200  # now cached

    changed = await api.http.post(
        CHANGE,
        json={"old_password": USER_PASSWORD, "new_password": NEW_PASSWORD},
        headers=engineer.headers,
    )
    assert changed.status_code == 200, changed.text
    for ended in (engineer.headers, other_session):
        await _refused_as_revoked(api, ended)
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await api.http.get(ME, headers=fresh)).json()["username"] == engineer.username
    assert (await api.http.get(ME, headers={"X-API-Key": key["key"]})).status_code == 200
    assert await _status_of_login(api, engineer.username, USER_PASSWORD) == 401
    assert await _status_of_login(api, engineer.username, NEW_PASSWORD) == 200

    entries = await _audit_entries(api, admin)
    row = next(entry for entry in entries if entry["action"] == "change_own_password")
    assert (row["username"], row["result"]) == (engineer.username, 200)
    assert row["detail"] == "own password changed; login sessions revoked: 2"
    trail = repr(entries) + (api.settings.log_dir / "api.log").read_text()
    assert USER_PASSWORD not in trail and NEW_PASSWORD not in trail


async def test_wrong_old_password_is_403_and_changes_nothing(
    api: InProcessApi, viewer: Caller
) -> None:
    answer = await api.http.post(
        CHANGE,
        json={"old_password": "not-my-password", "new_password": NEW_PASSWORD},
        headers=viewer.headers,
    )
    assert answer.status_code == 403
    assert error_of(answer, WrongPassword)["code"] == "wrong_password"
    assert (await api.http.get(ME, headers=viewer.headers)).status_code == 200
    assert await _status_of_login(api, viewer.username, USER_PASSWORD) == 200
    assert await _status_of_login(api, viewer.username, NEW_PASSWORD) == 401


async def test_admin_reset_ends_the_users_sessions_and_keeps_their_keys(
    api: InProcessApi, admin: Caller, engineer: Caller
) -> None:
    key = await api.api_key(engineer.headers, "kept")
    assert (await api.http.get(ME, headers=engineer.headers)).status_code == 200  # now cached
    reset = await api.http.put(
        _reset_path(engineer.user_id), json={"password": NEW_PASSWORD}, headers=admin.headers
    )
    assert reset.status_code == 204, reset.text
    await _refused_as_revoked(api, engineer.headers)
    assert (await api.http.get(ME, headers={"X-API-Key": key["key"]})).status_code == 200
    assert (await api.http.get(ME, headers=admin.headers)).status_code == 200  # not the admin's
    assert await _status_of_login(api, engineer.username, USER_PASSWORD) == 401
    assert await _status_of_login(api, engineer.username, NEW_PASSWORD) == 200
    entries = await _audit_entries(api, admin)
    row = next(entry for entry in entries if entry["action"] == "reset_password")
    assert row["detail"] == f"password of {engineer.username} reset; login sessions revoked: 1"
    assert NEW_PASSWORD not in repr(entries)


async def test_a_viewer_cannot_reset_someone_elses_password(
    api: InProcessApi, admin: Caller, viewer: Caller
) -> None:
    answer = await api.http.put(
        _reset_path(admin.user_id), json={"password": NEW_PASSWORD}, headers=viewer.headers
    )
    assert answer.status_code == 403
    assert error_of(answer, PermissionDenied)["code"] == "forbidden"
    assert await _status_of_login(api, "admin", ADMIN_PASSWORD) == 200


async def test_reset_of_a_missing_user_is_404(api: InProcessApi, admin: Caller) -> None:
    answer = await api.http.put(
        _reset_path(424242), json={"password": NEW_PASSWORD}, headers=admin.headers
    )
    assert answer.status_code == 404
    assert error_of(answer, NotFound)["code"] == "not_found"


@pytest.mark.parametrize(
    ("path_of", "body", "field"),
    [
        ("change", {"old_password": USER_PASSWORD, "new_password": "short"}, "body.new_password"),
        ("change", {"old_password": USER_PASSWORD, "new_password": "é" * 40}, "body.new_password"),
        ("change", {"new_password": NEW_PASSWORD}, "body.old_password"),
        ("reset", {"password": "short"}, "body.password"),
        ("reset", {"password": "é" * 40}, "body.password"),
    ],
)
async def test_a_new_password_obeys_the_rules_of_user_creation(
    api: InProcessApi, admin: Caller, path_of: str, body: dict[str, str], field: str
) -> None:
    path = CHANGE if path_of == "change" else _reset_path(admin.user_id)
    answer = await api.http.request(
        "POST" if path_of == "change" else "PUT", path, json=body, headers=admin.headers
    )
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    assert [entry["location"] for entry in answer.json()["error"]["fields"]] == [field]
    assert (await api.http.get(ME, headers=admin.headers)).status_code == 200  # nothing ended


async def test_cvp_user_reset_password_revokes_the_old_token(
    api: InProcessApi, engineer: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await api.http.get(ME, headers=engineer.headers)).status_code == 200  # now cached
    monkeypatch.setenv("CVP_DATA_DIR", str(api.settings.data_dir))
    monkeypatch.setenv("CVP_BCRYPT_ROUNDS", "4")
    result = CliRunner().invoke(
        main,
        ["user", "reset-password", engineer.username, "--password-stdin"],
        input=f"{NEW_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "login sessions revoked: 1" in result.output
    # Another process changed the store: the API learns of it once its cache entry is stale.
    api.clock.advance(api.settings.auth_cache_s + 0.1)
    await _refused_as_revoked(api, engineer.headers)
    assert await _status_of_login(api, engineer.username, USER_PASSWORD) == 401
    assert await _status_of_login(api, engineer.username, NEW_PASSWORD) == 200


class _ThroughApp(httpx.BaseTransport):
    """The SDK's requests answered by the in-process app (starlette's test client)."""

    def __init__(self, app: TestClient) -> None:
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._app.send(request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


@pytest.fixture
def sdk_transport(tmp_path: Path) -> Iterator[_ThroughApp]:
    # Not entered as a context manager: like the ASGI harness, the app runs without its lifespan.
    with in_process_platform(tmp_path / "data") as running:
        app = TestClient(create_app(running.state))
        try:
            yield _ThroughApp(app)
        finally:
            app.close()


def test_sdk_changes_and_resets_passwords_and_makes_expiring_keys(
    sdk_transport: _ThroughApp,
) -> None:
    url = "http://cvp.test"
    with Client.login(url, "admin", ADMIN_PASSWORD, transport=sdk_transport) as admin:
        alice = admin.create_user("alice-sdk", USER_PASSWORD, role="engineer")
    with Client.login(url, "alice-sdk", USER_PASSWORD, transport=sdk_transport) as alice_sdk:
        key = alice_sdk.create_api_key("ci", expires_in_days=7)
        assert key.expires_at is not None
        assert [listed.expires_at for listed in alice_sdk.list_api_keys()] == [key.expires_at]
        with pytest.raises(WrongPassword):
            alice_sdk.change_password("not-it", NEW_PASSWORD)
        alice_sdk.change_password(USER_PASSWORD, NEW_PASSWORD)
        assert alice_sdk.me().username == "alice-sdk"  # it carries the fresh token
        with Client.login(url, "admin", ADMIN_PASSWORD, transport=sdk_transport) as admin:
            admin.reset_password(alice.id, USER_PASSWORD)
        with pytest.raises(TokenRevoked):
            alice_sdk.me()
    with pytest.raises(InvalidCredentials):
        Client.login(url, "alice-sdk", NEW_PASSWORD, transport=sdk_transport)


async def test_old_password_guesses_are_throttled_like_logins(
    api: InProcessApi, engineer: Caller
) -> None:
    """A stolen token must not be a way round the login throttle to guess the password."""
    guesses = [
        await api.http.post(
            CHANGE,
            json={"old_password": f"guess-{n}-password", "new_password": NEW_PASSWORD},
            headers=engineer.headers,
        )
        for n in range(api.settings.login_max_failures + 1)
    ]
    assert [answer.status_code for answer in guesses] == [403] * api.settings.login_max_failures + [
        429
    ]
    assert "retry-after" in guesses[-1].headers
    async with api.from_address("10.9.8.7") as elsewhere:  # the pair backs off, not the user
        answer = await elsewhere.post(
            "/api/v1/auth/login", json={"username": engineer.username, "password": USER_PASSWORD}
        )
    assert answer.status_code == 200, answer.text  # the password is unchanged
