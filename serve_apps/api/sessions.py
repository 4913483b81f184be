"""What logging in and changing one's password share: a throttled password check, a new session.

Every check of a password a client typed goes through :func:`checked_password`, so a guess costs
the same throttle whether it comes through the login or through a password change with a stolen
token.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cvplatform.clock import to_iso
from cvplatform.schemas import TokenResponse
from serve_apps.api.state import PlatformState, platform
from serve_apps.auth.passwords import verify_password
from serve_apps.auth.tokens import issue_token


def client_address(request: Request) -> str:
    """The address the connection came from: behind a reverse proxy, the proxy's.

    ``X-Forwarded-For`` is not read: any client can write it, and would get a fresh budget per
    request.
    """
    return request.client.host if request.client else "unknown"


async def checked_password(
    request: Request, username: str, password: str, password_hash: str | None
) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: no such user), throttled.

    Raises:
        LoginLocked: the address, the whole API, or this (name, address) pair is throttled; no
            bcrypt ran and nothing was written.
    """
    state = platform(request)
    address = client_address(request)
    state.login_throttle.admit(address, username)
    try:
        async with state.login_throttle.password_check(address):
            matches = await run_in_threadpool(
                verify_password, password, password_hash, state.settings.bcrypt_rounds
            )
    except BaseException:
        state.login_throttle.abandon(address, username)
        raise
    state.login_throttle.settle(address, username, succeeded=matches)
    return matches


async def open_session(state: PlatformState, user_id: int) -> TokenResponse:
    """A new login session for ``user_id`` and its bearer token."""
    issued = issue_token(
        user_id, state.jwt_secret, state.clock(), timedelta(hours=state.settings.session_hours)
    )
    expires_at = to_iso(issued.expires_at)
    await state.ops.create_session(
        session_id=issued.session_id, user_id=user_id, expires_at=expires_at
    )
    return TokenResponse(access_token=issued.token, expires_at=expires_at)
