"""Logging in and out, and who am I."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from cvplatform.clock import to_iso
from cvplatform.errors import InvalidCredentials, InvalidInput, LoginLocked
from cvplatform.schemas import ErrorBody, LoginRequest, Principal, TokenResponse
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.passwords import verify_password
from serve_apps.auth.policy import Action
from serve_apps.auth.tokens import issue_token
from store import queries

router = APIRouter(route_class=GuardedRoute, tags=["auth"])


@router.post(
    "/api/v1/auth/login",
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    **requires(Action.PUBLIC),
)
async def login(body: LoginRequest, request: Request, db: ReadDb) -> TokenResponse:
    """Exchange a user name and password for a bearer token (valid for the session lifetime).

    After ``CVP_LOGIN_MAX_FAILURES`` failures in a row the name is locked for
    ``CVP_LOGIN_LOCKOUT_S`` seconds (429), whatever password comes next.
    """
    state = platform(request)
    settings = state.settings
    request.state.actor = body.username
    now = to_iso(state.clock())
    max_failures, lockout_s = settings.login_max_failures, settings.login_lockout_s
    await state.ops.reserve_login_attempt(body.username, now, max_failures, lockout_s)
    user = queries.user_credentials(db, body.username)
    password_ok = await run_in_threadpool(
        verify_password,
        body.password,
        user["password_hash"] if user else None,
        settings.bcrypt_rounds,
    )
    if user is None or not password_ok:
        failure = await state.ops.record_login_failure(body.username, now, max_failures, lockout_s)
        if failure["locked_until"]:
            raise LoginLocked(
                f"too many failed logins; try again after {failure['locked_until']}",
                retry_after_s=int(settings.login_lockout_s),
            )
        raise InvalidCredentials("wrong user name or password")
    await state.ops.clear_login_failures(username=body.username)
    issued = issue_token(
        user["id"], state.jwt_secret, state.clock(), timedelta(hours=settings.session_hours)
    )
    expires_at = to_iso(issued.expires_at)
    await state.ops.create_session(
        session_id=issued.session_id, user_id=user["id"], expires_at=expires_at
    )
    return TokenResponse(access_token=issued.token, expires_at=expires_at)


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
