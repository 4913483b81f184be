"""Login throttling that a stranger cannot turn against a user.

Every login attempt first takes a token from its client address's bucket, then one from the bucket
of the whole API, and only then is its (user name, address) pair asked whether it is backing off.
All three are checked before the password's bcrypt and before any store write, so an attempt that
is refused costs a few dictionary operations, and nothing is written for a failed one.

A pair backs off after ``max_failures`` failed logins (counted while no more than ``lockout`` apart)
for a fixed ``lockout``; a success clears its count. The name stays open to every other address:
a flood from one address locks out only its sender, where a lock on the name would have locked out
the name's owner too. The global bucket bounds the bcrypt work that many addresses together can
cause; it is the one limit a flood from many addresses can exhaust for everyone. What a flood's
address still gets through its bucket waits for a password check behind everyone else's once
that address has failed ``max_failures`` logins within a lockout (``check_queue``), so it uses
only capacity that real logins leave idle.

Memory is bounded: a bucket that has refilled, or a pair whose failures are older than
``lockout``, is forgotten (it would behave the same as a new one), and past ``max_entries`` the
least recently used is dropped (that address or pair starts afresh; the global bucket still holds).
Pure: the clock is passed in; nothing here knows about HTTP, the store or Ray.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from cvplatform.clock import Clock
from cvplatform.config import Settings
from cvplatform.errors import LoginLocked, LoginThrottled
from serve_apps.auth.check_queue import PasswordCheckQueue

MAX_ENTRIES = 50_000


def retry_after_s(seconds: float) -> int:
    """A wait as ``Retry-After`` carries it: whole seconds, at least one."""
    return max(1, math.ceil(seconds))


@dataclass
class _Bucket:
    # When the bucket would be full again if nothing more were taken (the "theoretical arrival
    # time" of the generic cell rate algorithm): times, not fractional tokens, so a refill at an
    # exact second is exact.
    full_at: datetime
    used_at: datetime


class TokenBuckets:
    """One token bucket per key, refilled at ``per_minute`` and holding up to ``capacity`` tokens
    (a minute's worth unless given).

    A new key starts full, so a client may spend a minute's allowance at once and then one token
    per ``60 / per_minute`` seconds.
    """

    def __init__(
        self, per_minute: float, max_keys: int = MAX_ENTRIES, capacity: float | None = None
    ) -> None:
        self._interval = timedelta(seconds=60 / per_minute)
        capacity = max(1.0, per_minute if capacity is None else capacity)
        self._window = self._interval * capacity  # the time a full bucket lasts
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: datetime) -> float:
        """Take one of ``key``'s tokens: 0.0 when taken, else the seconds until there is one."""
        self._forget_refilled(now)
        bucket = self._buckets.pop(key, None) or _Bucket(full_at=now, used_at=now)
        bucket.used_at = now
        self._buckets[key] = bucket  # the most recently used goes last
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        full_at = max(bucket.full_at, now) + self._interval
        if full_at - now > self._window:
            return (full_at - now - self._window).total_seconds()
        bucket.full_at = full_at
        return 0.0

    def empty(self, key: str, now: datetime) -> bool:
        """Whether ``key`` has no token now (it is not taken)."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.full_at + self._interval - now > self._window

    def _forget_refilled(self, now: datetime) -> None:
        # Unused for a window, a bucket is full: forgetting it changes nothing. Least recently
        # used first: once the oldest is within the window, so is every later one.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.used_at < self._window:
                return
            self._buckets.popitem(last=False)


@dataclass
class _Failures:
    last_seen: datetime
    failures: int = 0
    in_flight: int = 0
    locked_until: datetime | None = None


class FailureBackOff:
    """Failed logins per key (a user name and an address), and how long the key backs off.

    An attempt is reserved before its password is checked, so that a burst of parallel guesses
    gets at most ``max_failures`` password checks, not one per request.
    """

    def __init__(
        self, max_failures: int, lockout: timedelta, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._max_failures = max_failures
        self._lockout = lockout
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def reserve(self, key: tuple[str, str], now: datetime) -> float:
        """Reserve an attempt: 0.0 when it may go ahead, else the seconds it must wait."""
        self._forget_stale(now)
        entry = self._touch(key, now)
        if entry.locked_until is not None:
            if entry.locked_until > now:
                return (entry.locked_until - now).total_seconds()
            entry.failures, entry.locked_until = 0, None
        if entry.failures + entry.in_flight >= self._max_failures:
            return 1.0  # the attempts in flight may all still succeed
        entry.in_flight += 1
        return 0.0

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        """The reserved attempt failed: at ``max_failures`` the key backs off for ``lockout``."""
        entry = self._touch(key, now)
        entry.in_flight = max(0, entry.in_flight - 1)
        entry.failures += 1
        if entry.failures >= self._max_failures:
            entry.locked_until = now + self._lockout

    def succeeded(self, key: tuple[str, str]) -> None:
        self._entries.pop(key, None)

    def abandoned(self, key: tuple[str, str]) -> None:
        """The reserved attempt ended without a verdict (the store could not be read)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.in_flight = max(0, entry.in_flight - 1)

    def _touch(self, key: tuple[str, str], now: datetime) -> _Failures:
        entry = self._entries.pop(key, None) or _Failures(last_seen=now)
        entry.last_seen = now
        self._entries[key] = entry
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return entry

    def _forget_stale(self, now: datetime) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            locked = oldest.locked_until is not None and oldest.locked_until > now
            if oldest.in_flight or locked or now - oldest.last_seen < self._lockout:
                return
            self._entries.popitem(last=False)


class LoginThrottle:
    """The three checks a login passes before its password is checked, the queue it then waits
    in for a password check, and what its outcome changes.

    Thread-safe (the event loop and the thread pool may both call), except
    :meth:`password_check`, which belongs to the event loop.
    """

    def __init__(
        self,
        clock: Clock,
        per_address_per_minute: float,
        global_per_minute: float,
        max_failures: int,
        lockout: timedelta,
        max_entries: int = MAX_ENTRIES,
        check_slots: int = 1,
    ) -> None:
        self._clock = clock
        self.by_address = TokenBuckets(per_address_per_minute, max_entries)
        self._everyone = TokenBuckets(global_per_minute, max_keys=1)
        self.back_off = FailureBackOff(max_failures, lockout, max_entries)
        # An address that failed max_failures times within a lockout, whatever the names, is
        # suspect: its password checks wait behind everyone else's.
        failures_per_minute = max_failures * 60 / lockout.total_seconds()
        self._failures = TokenBuckets(failures_per_minute, max_entries, capacity=max_failures)
        self.checks = PasswordCheckQueue(check_slots)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> LoginThrottle:
        return cls(
            clock,
            per_address_per_minute=settings.login_per_address_per_minute,
            global_per_minute=settings.login_global_per_minute,
            max_failures=settings.login_max_failures,
            lockout=timedelta(seconds=settings.login_lockout_s),
            # bcrypt holds a core per check: more at once only makes each one slower.
            check_slots=os.cpu_count() or 1,
        )

    def admit(self, address: str, username: str) -> None:
        """Let one attempt by ``username`` from ``address`` go on to its password check.

        Raises:
            LoginThrottled: the address, or the whole API, is out of attempts for now.
            LoginLocked: this name from this address is backing off after failed logins.
        """
        now = self._clock()
        with self._lock:
            wait_s = self.by_address.take(address, now)
            if wait_s:
                raise LoginThrottled(
                    "too many login attempts from this address; try again in "
                    f"{retry_after_s(wait_s)} s",
                    retry_after_s(wait_s),
                )
            wait_s = self._everyone.take("*", now)
            if wait_s:
                raise LoginThrottled(
                    f"too many login attempts; try again in {retry_after_s(wait_s)} s",
                    retry_after_s(wait_s),
                )
            wait_s = self.back_off.reserve(_pair(address, username), now)
            if wait_s:
                raise LoginLocked(
                    "too many failed logins for this name from this address; try again in "
                    f"{retry_after_s(wait_s)} s",
                    retry_after_s(wait_s),
                )

    def suspect(self, address: str) -> bool:
        """Whether ``address`` failed ``max_failures`` logins (any names) within a lockout."""
        with self._lock:
            return self._failures.empty(address, self._clock())

    def password_check(self, address: str) -> AbstractAsyncContextManager[None]:
        """Wait for a password check slot (suspect addresses last) and hold it in the block."""
        return self.checks.slot(self.suspect(address))

    def settle(self, address: str, username: str, succeeded: bool) -> None:
        """The admitted attempt's password was checked: a success clears the pair's failures."""
        now = self._clock()
        with self._lock:
            if succeeded:
                self.back_off.succeeded(_pair(address, username))
            else:
                self.back_off.failed(_pair(address, username), now)
                self._failures.take(address, now)

    def abandon(self, address: str, username: str) -> None:
        """The admitted attempt ended before its password was checked."""
        with self._lock:
            self.back_off.abandoned(_pair(address, username))


def _pair(address: str, username: str) -> tuple[str, str]:
    # User names are unique whatever their case: "Admin" must not get a budget of its own.
    return username.casefold(), address
