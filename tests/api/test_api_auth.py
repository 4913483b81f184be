"""Logging in and out, tokens, API keys, login back-off: in-process, on a real store."""

from __future__ import annotations

import math
from datetime import timedelta

import httpx
import pytest

from cvplatform.clock import from_iso
from cvplatform.errors import (
    AuthError,
    InvalidCredentials,
    InvalidInput,
    LoginLocked,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenRevoked,
)
from serve_apps.auth.tokens import issue_token
from tests.api_harness import ADMIN_PASSWORD, USER_PASSWORD, Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


async def test_login_returns_a_token_valid_for_the_session_lifetime(api: InProcessApi) -> None:
    answer = await api.http.post(LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    me = await api.http.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (me.json()["username"], me.json()["role"], me.json()["via"]) == (
        "admin",
        "admin",
        "token",
    )
    hours_left = (from_iso(body["expires_at"]) - api.clock()).total_seconds() / 3600
    assert 23.9 < hours_left <= 24


async def test_wrong_password_is_401_with_the_error_shape(
    api: InProcessApi, viewer: Caller
) -> None:
    for username in (viewer.username, "no-such-user"):
        answer = await api.http.post(
            LOGIN, json={"username": username, "password": "not-the-password"}
        )
        assert answer.status_code == 401
        assert error_of(answer, InvalidCredentials)["code"] == "invalid_credentials"


async def test_repeated_failures_back_off_this_address_for_this_name_only(
    api: InProcessApi, viewer: Caller
) -> None:
    async def log_in(http: httpx.AsyncClient, password: str) -> tuple[int, str | None]:
        answer = await http.post(LOGIN, json={"username": viewer.username, "password": password})
        code = error_of(answer, AuthError)["code"] if answer.is_error else None
        return answer.status_code, code

    # the tests' limit is 3 failures; the third is still a 401
    for _ in range(3):
        assert await log_in(api.http, "wrong-password") == (401, "invalid_credentials")
    locked = await api.http.post(
        LOGIN, json={"username": viewer.username, "password": USER_PASSWORD}
    )
    assert locked.status_code == 429
    assert error_of(locked, LoginLocked)["code"] == "login_locked"
    retry_after_s = int(locked.headers["retry-after"])
    assert retry_after_s == math.ceil(api.settings.login_lockout_s)
    # the name is not locked for everyone: its owner, elsewhere, gets in
    async with api.from_address("10.0.0.9") as elsewhere:
        assert await log_in(elsewhere, USER_PASSWORD) == (200, None)
    api.clock.advance(api.settings.login_lockout_s)
    assert await log_in(api.http, USER_PASSWORD) == (200, None)


async def test_expired_tampered_and_revoked_tokens(api: InProcessApi, engineer: Caller) -> None:
    expired = issue_token(
        engineer.user_id,
        api.state.jwt_secret,
        api.clock() - timedelta(hours=25),
        timedelta(hours=24),
    )
    stale = await api.http.get(ME, headers={"Authorization": f"Bearer {expired.token}"})
    assert stale.status_code == 401
    assert error_of(stale, TokenExpired)["code"] == "token_expired"

    token = engineer.headers["Authorization"].split()[1]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    forged = await api.http.get(ME, headers={"Authorization": f"Bearer {tampered}"})
    assert forged.status_code == 401
    error_of(forged, AuthError)

    assert (await api.http.get(ME, headers=engineer.headers)).json()["username"] == (
        engineer.username
    )
    logout = await api.http.post("/api/v1/auth/logout", headers=engineer.headers)
    assert logout.status_code == 204
    revoked = await api.http.get(ME, headers=engineer.headers)
    assert revoked.status_code == 401
    assert error_of(revoked, TokenRevoked)["code"] == "token_revoked"


async def test_missing_or_malformed_credentials_are_401(api: InProcessApi) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"X-API-Key": "not-a-key"}):
        answer = await api.http.get(ME, headers=headers)
        assert answer.status_code == 401, headers
        assert error_of(answer, AuthError)["code"] == "unauthenticated"
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_api_key_is_shown_once_stored_hashed_and_revocable(
    api: InProcessApi, viewer: Caller
) -> None:
    created = await api.api_key(viewer.headers, "notebook")
    assert created["key"].startswith(created["prefix"] + "_")
    keyed = {"X-API-Key": created["key"]}
    me = (await api.http.get(ME, headers=keyed)).json()
    assert (me["username"], me["via"]) == (viewer.username, "api_key")
    listed = (await api.http.get("/api/v1/auth/api-keys", headers=viewer.headers)).json()
    assert [(key["id"], key["prefix"]) for key in listed] == [(created["id"], created["prefix"])]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]
    stored_files = [api.settings.db_path, api.settings.db_path.with_name("cvp.db-wal")]
    stored_bytes = b"".join(path.read_bytes() for path in stored_files if path.exists())
    assert created["prefix"].encode() in stored_bytes  # the search would find a stored key...
    assert created["key"].encode() not in stored_bytes  # ...but only its prefix and hash are there

    revoking = await api.http.delete(
        f"/api/v1/auth/api-keys/{created['id']}", headers=viewer.headers
    )
    assert revoking.status_code == 200
    refused = await api.http.get(ME, headers=keyed)
    assert refused.status_code == 401
    assert error_of(refused, TokenRevoked)["code"] == "token_revoked"
    other_key = await api.api_key(viewer.headers, "x")
    # logout is for tokens, not API keys
    logout = await api.http.post("/api/v1/auth/logout", headers={"X-API-Key": other_key["key"]})
    assert logout.status_code == 422
    assert error_of(logout, InvalidInput)["code"] == "invalid_input"


async def test_a_user_cannot_revoke_someone_elses_key(api: InProcessApi) -> None:
    owner = await api.new_user("engineer")
    other = await api.new_user("engineer")
    key = await api.api_key(owner.headers, "mine")
    denied = await api.http.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=other.headers)
    assert denied.status_code == 404
    assert error_of(denied, NotFound)["code"] == "not_found"
    still_valid = await api.http.get(ME, headers={"X-API-Key": key["key"]})
    assert still_valid.status_code == 200


async def test_role_change_applies_to_the_next_request(
    api: InProcessApi, admin: Caller, engineer: Caller
) -> None:
    config = await api.http.get("/api/v1/config", headers=engineer.headers)
    assert config.json()["port"] == api.settings.port
    changed = await api.http.patch(
        f"/api/v1/users/{engineer.user_id}", json={"role": "viewer"}, headers=admin.headers
    )
    assert changed.status_code == 200
    denied = await api.http.get("/api/v1/config", headers=engineer.headers)
    assert denied.status_code == 403
    assert error_of(denied, PermissionDenied)["code"] == "forbidden"


async def test_login_validation_errors_list_fields(api: InProcessApi) -> None:
    answer = await api.http.post(LOGIN, json={"username": unique("u")})
    assert answer.status_code == 422
    error = error_of(answer)
    assert error["code"] == "validation_error"
    assert [field["location"] for field in error["fields"]] == ["body.password"]
