"""Login tokens: HS256 JWTs whose ``jti`` names a session row, so that logout can revoke them.

Expiry is checked against a clock passed in (PyJWT's own check reads the wall clock), and the
session row is checked too: a token is good only while both say so.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt

from cvplatform.errors import AuthError, TokenExpired

ALGORITHM = "HS256"
ISSUER = "cv-platform"
SECRET_BYTES = 64


@dataclass(frozen=True)
class IssuedToken:
    token: str
    session_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    session_id: str
    expires_at: datetime


def load_or_create_secret(path: Path) -> bytes:
    """The signing secret, made on first start and kept in a file only its owner can read.

    Raises:
        RuntimeError: the file exists but is too short to be a secret this made.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: a crash never leaves a
        # half-written secret, and of two processes racing on first start, one link wins.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-secret.")
        try:
            with os.fdopen(fd, "wb") as sink:
                sink.write(secrets.token_bytes(SECRET_BYTES))
                sink.flush()
                os.fsync(sink.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            Path(temporary).unlink()
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise RuntimeError(
            f"{path} holds {len(secret)} bytes, not a {SECRET_BYTES}-byte secret; delete it to "
            "make a new one (every login token is then refused)"
        )
    return secret


def issue_token(user_id: int, secret: bytes, now: datetime, lifetime: timedelta) -> IssuedToken:
    session_id = uuid.uuid4().hex
    expires_at = now + lifetime
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "jti": session_id,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=ALGORITHM), session_id, expires_at)


def decode_token(token: str, secret: bytes, now: datetime) -> TokenClaims:
    """Check the signature and the expiry.

    Raises:
        TokenExpired: the token's time is over.
        AuthError: the token is malformed, tampered with, or signed with another secret.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "iss"], "verify_exp": False},
        )
        user_id = int(claims["sub"])
        expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    except (jwt.InvalidTokenError, ValueError, TypeError) as error:
        raise AuthError(f"the token is not valid: {error}") from error
    if expires_at <= now:
        raise TokenExpired("the token has expired; log in again")
    return TokenClaims(user_id, str(claims["jti"]), expires_at)
