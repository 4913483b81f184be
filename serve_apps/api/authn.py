"""Who is calling: a bearer token (login session) or an API key, checked against the store.

A check's result is reused for a second or two (``CVP_AUTH_CACHE_S``), so that a hundred clients
polling with one key cost one lookup, not a hundred; the routes that revoke a key, end a session,
change a role or a password, or delete a user forget the affected entries at once. A token's or
an API key's expiry is checked on every request, cached or not.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlite_utils
from starlette.requests import Request

from cvplatform.clock import from_iso, to_iso
from cvplatform.errors import (
    ApiKeyExpired,
    AuthError,
    CvpError,
    TokenExpired,
    TokenRevoked,
)
from cvplatform.schemas import Principal
from serve_apps.api.state import AuthContext
from serve_apps.auth.api_keys import key_matches, key_prefix
from serve_apps.auth.credential_cache import CachedCredential, credential_fingerprint
from serve_apps.auth.tokens import decode_token
from store import queries

log = logging.getLogger("cvp.api")
_HOW_TO_AUTHENTICATE = (
    "send 'Authorization: Bearer <token>' (POST /api/v1/auth/login) or 'X-API-Key'"
)


async def authenticate(request: Request) -> Principal:
    """The principal behind the request's credentials.

    Raises:
        AuthError: no credentials, or credentials that are malformed, unknown, expired or revoked.
    """
    # The management API's state, or the inference pool's: both are AuthContexts.
    state: AuthContext = request.app.state.platform
    api_key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization")
    if not api_key and not authorization:
        raise AuthError(f"credentials required: {_HOW_TO_AUTHENTICATE}")
    if api_key:
        return await _from_api_key(state, api_key)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(f"unsupported Authorization header: {_HOW_TO_AUTHENTICATE}")
    principal, session_id = _from_token(state, token.strip())
    request.state.session_id = session_id  # what logout revokes
    return principal


def _from_token(state: AuthContext, token: str) -> tuple[Principal, str]:
    now = state.clock()
    fingerprint = credential_fingerprint(token)
    cached = state.credentials.get(fingerprint)
    if cached is None:
        claims = decode_token(token, state.jwt_secret, now)
        with state.readers.borrow() as db:
            cached = _session_credential(db, claims.user_id, claims.session_id)
        state.credentials.put(fingerprint, cached)
    if cached.expires_at is not None and cached.expires_at <= now:
        raise TokenExpired("the token has expired; log in again")
    return cached.principal, str(cached.record_id)


def _session_credential(
    db: sqlite_utils.Database, user_id: int, session_id: str
) -> CachedCredential:
    session = queries.session_for_auth(db, session_id)
    if session is None or session["user_id"] != user_id:
        raise TokenRevoked("the session of this token no longer exists; log in again")
    if session["revoked_at"] is not None:
        raise TokenRevoked("this token was revoked (logged out); log in again")
    principal = Principal(
        user_id=session["user_id"], username=session["username"], role=session["role"], via="token"
    )
    return CachedCredential(principal, session_id, expires_at=from_iso(session["expires_at"]))


async def _from_api_key(state: AuthContext, key: str) -> Principal:
    prefix = key_prefix(key)
    if prefix is None:
        raise AuthError("the X-API-Key header does not hold a cv-platform API key (cvp_...)")
    fingerprint = credential_fingerprint(key)
    cached = state.credentials.get(fingerprint)
    if cached is not None:
        _refuse_expired_key(cached, state.clock())
        return cached.principal
    with state.readers.borrow() as db:
        row = queries.api_key_for_auth(db, prefix)
    if row is None or not key_matches(key, row["key_hash"]):
        raise AuthError("unknown API key")
    if row["revoked_at"] is not None:
        raise TokenRevoked("this API key was revoked; create a new one")
    principal = Principal(
        user_id=row["user_id"], username=row["username"], role=row["role"], via="api_key"
    )
    expires_at = from_iso(row["expires_at"]) if row["expires_at"] else None
    credential = CachedCredential(principal, row["id"], expires_at=expires_at)
    _refuse_expired_key(credential, state.clock())
    state.credentials.put(fingerprint, credential)
    last_used = from_iso(row["last_used_at"]) if row["last_used_at"] else None
    if state.key_use.should_touch(row["id"], last_used):
        # One request per key and interval waits for this write; the rest never see it.
        try:
            await state.ops.touch_api_key(key_id=row["id"])
        except CvpError as error:  # the request itself can go on without this hint
            log.warning("could not record API key use: %s", error.message)
    return principal


def _refuse_expired_key(credential: CachedCredential, now: datetime) -> None:
    # Checked on every request, cached or not: a cache entry may outlive the key's expiry.
    if credential.expires_at is not None and credential.expires_at <= now:
        raise ApiKeyExpired(
            f"this API key expired at {to_iso(credential.expires_at)}; create a new one"
        )
