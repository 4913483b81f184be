"""Who is calling: a bearer token (login session) or an API key, checked against the store."""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlite_utils
from starlette.requests import Request

from cvplatform.clock import from_iso, to_iso
from cvplatform.errors import AuthError, CvpError, TokenExpired, TokenRevoked
from cvplatform.schemas import Principal
from serve_apps.api.state import PlatformState, platform
from serve_apps.auth.api_keys import key_matches, key_prefix
from serve_apps.auth.tokens import decode_token
from store import queries
from store.connections import open_reader

log = logging.getLogger("cvp.api")
# last_used_at is a hint for the key's owner, not a log: write it at most this often per key.
_KEY_TOUCH_INTERVAL = timedelta(seconds=60)
_HOW_TO_AUTHENTICATE = (
    "send 'Authorization: Bearer <token>' (POST /api/v1/auth/login) or 'X-API-Key'"
)


async def authenticate(request: Request) -> Principal:
    """The principal behind the request's credentials.

    Raises:
        AuthError: no credentials, or credentials that are malformed, unknown, expired or revoked.
    """
    state = platform(request)
    api_key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization")
    if not api_key and not authorization:
        raise AuthError(f"credentials required: {_HOW_TO_AUTHENTICATE}")
    db = open_reader(state.settings.db_path)
    try:
        if api_key:
            return await _from_api_key(state, db, api_key)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(f"unsupported Authorization header: {_HOW_TO_AUTHENTICATE}")
        principal, session_id = _from_token(state, db, token.strip())
        request.state.session_id = session_id  # what logout revokes
        return principal
    finally:
        db.conn.close()


def _from_token(
    state: PlatformState, db: sqlite_utils.Database, token: str
) -> tuple[Principal, str]:
    now = state.clock()
    claims = decode_token(token, state.jwt_secret, now)
    session = queries.session_for_auth(db, claims.session_id)
    if session is None or session["user_id"] != claims.user_id:
        raise TokenRevoked("the session of this token no longer exists; log in again")
    if session["revoked_at"] is not None:
        raise TokenRevoked("this token was revoked (logged out); log in again")
    if session["expires_at"] <= to_iso(now):
        raise TokenExpired("the token has expired; log in again")
    principal = Principal(
        user_id=session["user_id"], username=session["username"], role=session["role"], via="token"
    )
    return principal, claims.session_id


async def _from_api_key(state: PlatformState, db: sqlite_utils.Database, key: str) -> Principal:
    prefix = key_prefix(key)
    if prefix is None:
        raise AuthError("the X-API-Key header does not hold a cv-platform API key (cvp_...)")
    row = queries.api_key_for_auth(db, prefix)
    if row is None or not key_matches(key, row["key_hash"]):
        raise AuthError("unknown API key")
    if row["revoked_at"] is not None:
        raise TokenRevoked("this API key was revoked; create a new one")
    now = state.clock()
    last_used = row["last_used_at"]
    if last_used is None or from_iso(last_used) + _KEY_TOUCH_INTERVAL <= now:
        try:
            await state.store.call("touch_api_key", key_id=row["id"])
        except CvpError as error:  # the request itself can go on without this hint
            log.warning("could not record API key use: %s", error.message)
    return Principal(
        user_id=row["user_id"], username=row["username"], role=row["role"], via="api_key"
    )
