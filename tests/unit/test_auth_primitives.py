"""Passwords, tokens and API keys, with the clock passed in."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from cvplatform.errors import AuthError, TokenExpired
from serve_apps.auth.api_keys import generate_api_key, key_matches, key_prefix
from serve_apps.auth.passwords import hash_password, verify_password
from serve_apps.auth.tokens import decode_token, issue_token, load_or_create_secret

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECRET = b"s" * 64


def test_password_hash_is_bcrypt_and_verifies() -> None:
    hashed = hash_password("correct horse", rounds=4)
    assert hashed.startswith("$2b$04$")
    assert verify_password("correct horse", hashed, rounds=4)
    assert not verify_password("wrong horse", hashed, rounds=4)


def test_unknown_user_and_overlong_password_never_match() -> None:
    hashed = hash_password("x" * 72, rounds=4)
    assert not verify_password("anything", None, rounds=4)
    # bcrypt would read only the first 72 bytes: a longer password must not slip through.
    assert not verify_password("x" * 80, hashed, rounds=4)


def test_token_round_trip() -> None:
    issued = issue_token(7, SECRET, NOW, timedelta(hours=24))
    claims = decode_token(issued.token, SECRET, NOW + timedelta(hours=23))
    assert (claims.user_id, claims.session_id) == (7, issued.session_id)
    assert claims.expires_at == NOW + timedelta(hours=24)


def test_token_expires_by_the_clock_given() -> None:
    issued = issue_token(7, SECRET, NOW, timedelta(hours=24))
    with pytest.raises(TokenExpired):
        decode_token(issued.token, SECRET, NOW + timedelta(hours=24, seconds=1))


def test_tampered_and_foreign_tokens_are_refused() -> None:
    token = issue_token(7, SECRET, NOW, timedelta(hours=1)).token
    header, _payload, signature = token.split(".")
    forged_payload = jwt.encode({"sub": "1"}, "x" * 32).split(".")[1]
    for bad in (
        f"{header}.{forged_payload}.{signature}",
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        jwt.encode(
            {"sub": "7", "jti": "x", "iat": 0, "exp": 2**40, "iss": "cv-platform"}, "k" * 32
        ),
        "not-a-token",
    ):
        with pytest.raises(AuthError):
            decode_token(bad, SECRET, NOW)


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    first = load_or_create_secret(path)
    assert len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first


def test_a_truncated_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    path.write_bytes(b"")
    with pytest.raises(RuntimeError, match="delete it"):
        load_or_create_secret(path)


def test_api_key_shape_and_hash() -> None:
    new_key = generate_api_key()
    assert key_prefix(new_key.key) == new_key.prefix
    assert new_key.prefix.startswith("cvp_") and len(new_key.prefix) == 12
    assert new_key.key_hash != new_key.key and len(new_key.key_hash) == 64
    assert key_matches(new_key.key, new_key.key_hash)
    assert not key_matches(new_key.key + "x", new_key.key_hash)
    assert key_prefix("cvp_short") is None
    assert key_prefix("Bearer something") is None
