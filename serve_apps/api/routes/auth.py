"""Logging in and out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from cvplatform.errors import InvalidCredentials, InvalidInput
from cvplatform.schemas import ErrorBody, LoginRequest, Principal, TokenResponse
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.sessions import checked_password, open_session
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.policy import Action
from store import queries

router = APIRouter(route_class=GuardedRoute, tags=["auth"])


@router.post(
    "/api/v1/auth/login",
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    **requires(Action.PUBLIC),
)
async def login(body: LoginRequest, request: Request, db: ReadDb) -> TokenResponse:
    """Exchange a user name and password for a bearer token (valid for the session lifetime).

    Throttled before the password is checked (429 with ``Retry-After``): per client address
    (``CVP_LOGIN_PER_ADDRESS_PER_MINUTE``), for the whole API (``CVP_LOGIN_GLOBAL_PER_MINUTE``),
    and per (name, address) for ``CVP_LOGIN_LOCKOUT_S`` after ``CVP_LOGIN_MAX_FAILURES`` failures.
    An address whose logins keep failing waits for its password checks behind everyone else.
    A failed login writes nothing to the store.
    """
    request.state.actor = body.username
    user = queries.user_credentials(db, body.username)
    password_hash = user["password_hash"] if user else None
    matches = await checked_password(request, body.username, body.password, password_hash)
    if user is None or not matches:
        raise InvalidCredentials("wrong user name or password")
    return await open_session(platform(request), user["id"])


@router.post("/api/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, **requires(Action.SELF))
async def logout(request: Request) -> None:
    """Revoke the bearer token this request carries; it is refused from now on."""
    if principal_of(request).via != "token":
        raise InvalidInput(
            "logout revokes a bearer token; to retire an API key use "
            "DELETE /api/v1/auth/api-keys/{id}"
        )
    state = platform(request)
    await state.ops.revoke_session(session_id=request.state.session_id)
    state.credentials.forget_record(request.state.session_id)


@router.get("/api/v1/auth/me", **requires(Action.SELF))
async def whoami(request: Request) -> Principal:
    """The caller's identity and role, and how they authenticated."""
    return principal_of(request)
