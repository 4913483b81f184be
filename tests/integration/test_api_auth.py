"""Logging in and out, tokens, API keys, lockout: over real HTTP against the live platform."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from cvplatform.client import Client
from cvplatform.clock import from_iso, utc_now
from cvplatform.errors import (
    AuthError,
    InvalidCredentials,
    InvalidInput,
    LoginLocked,
    PermissionDenied,
    TokenExpired,
    TokenRevoked,
)
from serve_apps.auth.tokens import issue_token, load_or_create_secret
from tests.helpers import unique
from tests.integration.conftest import USER_PASSWORD, LivePlatform


def test_login_returns_a_token_valid_for_the_session_lifetime(platform: LivePlatform) -> None:
    answer = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        json={"username": "admin", "password": "admin-password-for-tests"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    with Client(platform.url, token=body["access_token"]) as admin:
        me = admin.me()
    assert (me.username, me.role, me.via) == ("admin", "admin", "token")
    hours_left = (from_iso(body["expires_at"]) - utc_now()).total_seconds() / 3600
    assert 23.9 < hours_left <= 24


def test_wrong_password_is_401_with_the_error_shape(platform: LivePlatform) -> None:
    user, client = platform.new_user("viewer")
    client.close()
    answer = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        json={"username": user.username, "password": "not-the-password"},
    )
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "invalid_credentials"
    assert error["request_id"] == answer.headers["x-request-id"]
    with pytest.raises(InvalidCredentials):
        platform.login("no-such-user", "whatever-password")


def test_repeated_failures_lock_the_name_for_a_while(platform: LivePlatform) -> None:
    user, client = platform.new_user("viewer")
    client.close()
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            platform.login(user.username, "wrong-password")
    with pytest.raises(LoginLocked):  # the third failure locks (the tests' limit is 3)
        platform.login(user.username, "wrong-password")
    locked = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        json={"username": user.username, "password": USER_PASSWORD},
    )
    assert locked.status_code == 429
    retry_after_s = int(locked.headers["retry-after"])
    assert retry_after_s in range(1, int(platform.settings.login_lockout_s) + 2)
    with pytest.raises(LoginLocked):  # even the right password waits out the lockout
        platform.login(user.username, USER_PASSWORD)
    time.sleep(platform.settings.login_lockout_s + 0.5)
    platform.login(user.username, USER_PASSWORD).close()


def test_expired_tampered_and_revoked_tokens(platform: LivePlatform) -> None:
    user, client = platform.new_user("engineer")
    secret = load_or_create_secret(platform.settings.jwt_secret_path)
    expired = issue_token(user.id, secret, utc_now() - timedelta(hours=25), timedelta(hours=24))
    with Client(platform.url, token=expired.token) as stale, pytest.raises(TokenExpired):
        stale.me()

    token = client._http.headers["authorization"].split()[1]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    with Client(platform.url, token=tampered) as forged, pytest.raises(AuthError):
        forged.me()

    assert client.me().username == user.username
    client.logout()
    with pytest.raises(TokenRevoked):
        client.me()
    client.close()


def test_missing_or_malformed_credentials_are_401(platform: LivePlatform) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"X-API-Key": "not-a-key"}):
        answer = httpx.get(f"{platform.url}/api/v1/auth/me", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["error"]["code"] == "unauthenticated"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_api_key_is_shown_once_stored_hashed_and_revocable(platform: LivePlatform) -> None:
    user, client = platform.new_user("viewer")
    created = client.create_api_key("notebook")
    assert created.key.startswith(created.prefix + "_")
    with Client(platform.url, api_key=created.key) as keyed:
        me = keyed.me()
        assert (me.username, me.via) == (user.username, "api_key")
    listed = client.list_api_keys()
    assert [(key.id, key.prefix) for key in listed] == [(created.id, created.prefix)]
    assert listed[0].last_used_at is not None
    assert "key" not in listed[0].model_dump()
    stored_files = [platform.settings.db_path, platform.settings.db_path.with_name("cvp.db-wal")]
    stored_bytes = b"".join(path.read_bytes() for path in stored_files if path.exists())
    assert created.prefix.encode() in stored_bytes  # the search would find a stored key...
    assert created.key.encode() not in stored_bytes  # ...but only its prefix and hash are there

    client.revoke_api_key(created.id)
    with Client(platform.url, api_key=created.key) as keyed, pytest.raises(TokenRevoked):
        keyed.me()
    with pytest.raises(InvalidInput):  # logout is for tokens, not API keys
        Client(platform.url, api_key=client.create_api_key("x").key).logout()
    client.close()


def test_a_user_cannot_revoke_someone_elses_key(platform: LivePlatform) -> None:
    _, owner = platform.new_user("engineer")
    _, other = platform.new_user("engineer")
    key = owner.create_api_key("mine")
    with pytest.raises(Exception) as denied:
        other.revoke_api_key(key.id)
    assert getattr(denied.value, "http_status", None) == 404
    owner.close()
    other.close()


def test_role_change_applies_to_the_next_request(platform: LivePlatform, admin: Client) -> None:
    user, client = platform.new_user("engineer")
    assert client.config()["port"] == platform.settings.port
    admin.set_role(user.id, "viewer")
    with pytest.raises(PermissionDenied):
        client.config()
    client.close()


def test_login_validation_errors_list_fields(platform: LivePlatform) -> None:
    answer = httpx.post(f"{platform.url}/api/v1/auth/login", json={"username": unique("u")})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert [field["location"] for field in error["fields"]] == ["body.password"]
