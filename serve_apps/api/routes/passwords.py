"""Passwords: a user changes their own, an admin resets anyone's. Both end the user's sessions.

A changed password ends every login session of its user at once (a stolen token dies with the
old password); the user's API keys stay, each a credential of its own that is revoked one by one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from cvplatform.errors import WrongPassword
from cvplatform.schemas import ErrorBody, PasswordChange, PasswordReset, TokenResponse
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.params import UserId
from serve_apps.api.sessions import checked_password, open_session
from serve_apps.api.state import PlatformState, ReadDb, platform
from serve_apps.auth.passwords import hash_password
from serve_apps.auth.policy import Action
from store import queries
from store.records import Row

router = APIRouter(route_class=GuardedRoute)
_WRONG_OLD_PASSWORD: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "the old password is wrong (wrong_password)"}
}


@router.post(
    "/api/v1/auth/password",
    tags=["auth"],
    responses=_WRONG_OLD_PASSWORD,
    **requires(Action.SELF),
)
async def change_own_password(body: PasswordChange, request: Request, db: ReadDb) -> TokenResponse:
    """Change the caller's password; the old one must be given.

    Every login session of the caller ends, the one of this request too; the answer carries a
    fresh token for the new password. The caller's API keys stay valid.
    """
    state = platform(request)
    principal = principal_of(request)
    user = queries.user_credentials(db, principal.username)
    old_password_ok = await checked_password(
        request, principal.username, body.old_password, user["password_hash"] if user else None
    )
    if user is None or user["id"] != principal.user_id or not old_password_ok:
        raise WrongPassword("the old password is wrong; the password is unchanged")
    changed = await _replace_password(state, principal.user_id, body.new_password)
    request.state.audit_detail = (
        f"own password changed; login sessions revoked: {changed['sessions_revoked']}"
    )
    return await open_session(state, principal.user_id)


@router.put(
    "/api/v1/users/{user_id}/password",
    tags=["users"],
    status_code=status.HTTP_204_NO_CONTENT,
    **requires(Action.USERS_MANAGE),
)
async def reset_password(
    user_id: UserId, body: PasswordReset, request: Request, db: ReadDb
) -> None:
    """Set a user's password without the old one; every login session of theirs ends.

    Their API keys stay valid. Resetting one's own password this way ends one's own sessions too.
    """
    queries.required(queries.user_by_id, db, user_id, "user")  # a 404 before a bcrypt hash
    changed = await _replace_password(platform(request), user_id, body.password)
    request.state.audit_detail = (
        f"password of {changed['username']} reset; "
        f"login sessions revoked: {changed['sessions_revoked']}"
    )


async def _replace_password(state: PlatformState, user_id: int, password: str) -> Row:
    password_hash = await run_in_threadpool(hash_password, password, state.settings.bcrypt_rounds)
    changed = await state.ops.set_password(user_id=user_id, password_hash=password_hash)
    # The revoked sessions must be refused from the next request on, not after the cache's time.
    state.credentials.forget_user(user_id)
    return changed
