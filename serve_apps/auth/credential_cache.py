"""Remembering who a credential belongs to for a second or two, and when a key was last touched.

Under a hundred concurrent clients every request used to open a SQLite connection to look its
credential up, and every request that found an API key's ``last_used_at`` stale sent the same
write to the store actor. An authentication result is now reused for ``ttl`` (a revocation made
elsewhere takes effect within it; one made through this API takes effect at once, because the
route forgets the entry), and a key's use is written at most once per interval per key.
Pure: the clock is passed in, nothing here knows about HTTP or Ray.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cvplatform.clock import Clock
from cvplatform.schemas import Principal


@dataclass(frozen=True)
class CachedCredential:
    principal: Principal
    # What names the credential in the store: the API key's id, or the login session's id.
    record_id: int | str
    # A token's session or an API key ends at this time even while its cache entry is fresh.
    expires_at: datetime | None = None


def credential_fingerprint(credential: str) -> str:
    """What the cache is keyed by: never the credential itself."""
    return hashlib.sha256(credential.encode()).hexdigest()


class CredentialCache:
    """A small LRU of authentication results, each good for ``ttl``.

    Thread-safe: uvicorn's event loop and FastAPI's thread pool may both ask.
    """

    def __init__(self, ttl: timedelta, clock: Clock, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[datetime, CachedCredential]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, fingerprint: str) -> CachedCredential | None:
        now = self._clock()
        with self._lock:
            found = self._entries.get(fingerprint)
            if found is None:
                return None
            stored_at, credential = found
            if now - stored_at >= self._ttl or now < stored_at:
                del self._entries[fingerprint]
                return None
            self._entries.move_to_end(fingerprint)
            return credential

    def put(self, fingerprint: str, credential: CachedCredential) -> None:
        if self._ttl <= timedelta(0):
            return
        with self._lock:
            self._entries[fingerprint] = (self._clock(), credential)
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def forget_record(self, record_id: int | str) -> None:
        """Drop every entry for one API key or session (it was revoked here)."""
        self._forget(lambda credential: credential.record_id == record_id)

    def forget_user(self, user_id: int) -> None:
        """Drop every entry of one user (their role changed, or they were deleted)."""
        self._forget(lambda credential: credential.principal.user_id == user_id)

    def _forget(self, matches: Callable[[CachedCredential], bool]) -> None:
        with self._lock:
            for fingerprint in [
                fingerprint
                for fingerprint, (_, credential) in self._entries.items()
                if matches(credential)
            ]:
                del self._entries[fingerprint]


class KeyUseThrottle:
    """Decides which request records an API key's use: one per key per interval, in-process.

    The decision is taken and remembered in one step, so of many requests in flight with the
    same key at most one is told to write, whatever ``last_used_at`` each of them read.
    """

    def __init__(self, interval: timedelta, clock: Clock) -> None:
        self._interval = interval
        self._clock = clock
        self._last_touch: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def should_touch(self, key_id: int, stored_last_used: datetime | None) -> bool:
        now = self._clock()
        with self._lock:
            known = [
                moment for moment in (stored_last_used, self._last_touch.get(key_id)) if moment
            ]
            if known and now - max(known) < self._interval:
                return False
            self._last_touch[key_id] = now
            return True
