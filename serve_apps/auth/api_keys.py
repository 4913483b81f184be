"""API keys: ``cvp_<8 hex prefix>_<secret>``. Shown once; only the prefix and a hash are kept.

The secret part carries 256 bits of randomness, so a plain SHA-256 is a sound way to keep it
(a slow hash such as bcrypt protects low-entropy passwords and would only slow every request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_KEY_PATTERN = re.compile(r"^(cvp_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class NewApiKey:
    key: str
    prefix: str
    key_hash: str


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_api_key() -> NewApiKey:
    prefix = f"cvp_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key, prefix, hash_api_key(key))


def key_prefix(key: str) -> str | None:
    """The prefix under which a key is looked up, or None if the text is not shaped like a key."""
    match = _KEY_PATTERN.match(key)
    return match.group(1) if match else None


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)
