"""Passwords are kept only as bcrypt hashes."""

from __future__ import annotations

import functools

import bcrypt

from cvplatform.schemas import PASSWORD_MAX_BYTES


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


@functools.cache
def _stand_in_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=rounds))


def verify_password(password: str, password_hash: str | None, rounds: int) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: the user does not exist).

    An unknown user or an over-long password still costs one full bcrypt check, so that timing
    does not tell which user names exist.
    """
    candidate = password.encode()
    if password_hash is None or len(candidate) > PASSWORD_MAX_BYTES:
        bcrypt.checkpw(candidate[:PASSWORD_MAX_BYTES], _stand_in_hash(rounds))
        return False
    return bcrypt.checkpw(candidate, password_hash.encode())
