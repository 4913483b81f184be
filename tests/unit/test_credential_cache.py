"""The authentication cache, the key-use throttle and the pooled readers (clock passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cvplatform.schemas import Principal
from serve_apps.auth.credential_cache import (
    CachedCredential,
    CredentialCache,
    KeyUseThrottle,
    credential_fingerprint,
)
from store.connections import ReaderPool
from store.writer import StoreWriter

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _credential(user_id: int, record_id: int | str) -> CachedCredential:
    principal = Principal(user_id=user_id, username=f"u{user_id}", role="viewer", via="api_key")
    return CachedCredential(principal, record_id)


def test_an_entry_lives_for_the_ttl_and_no_longer() -> None:
    clock = Clock()
    cache = CredentialCache(timedelta(seconds=2), clock)
    cache.put("a", _credential(1, 10))
    clock.now += timedelta(seconds=1.999)
    assert cache.get("a") == _credential(1, 10)
    clock.now += timedelta(milliseconds=1)
    assert cache.get("a") is None


def test_a_clock_that_goes_back_does_not_keep_an_entry_alive() -> None:
    clock = Clock()
    cache = CredentialCache(timedelta(seconds=2), clock)
    cache.put("a", _credential(1, 10))
    clock.now -= timedelta(minutes=5)
    assert cache.get("a") is None


def test_forgetting_by_record_and_by_user() -> None:
    cache = CredentialCache(timedelta(seconds=2), Clock())
    cache.put("key", _credential(1, 10))
    cache.put("session", _credential(1, "s-1"))
    cache.put("other", _credential(2, 11))
    cache.forget_record(10)
    assert cache.get("key") is None and cache.get("session") is not None
    cache.forget_user(1)
    assert cache.get("session") is None and cache.get("other") is not None


def test_the_cache_is_bounded_and_a_zero_ttl_keeps_nothing() -> None:
    cache = CredentialCache(timedelta(seconds=2), Clock(), max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(name, _credential(1, name))
    assert [cache.get(name) is not None for name in ("a", "b", "c")] == [False, True, True]
    off = CredentialCache(timedelta(0), Clock())
    off.put("a", _credential(1, 1))
    assert off.get("a") is None


def test_the_fingerprint_is_not_the_credential() -> None:
    key = "cvp_0123abcd_" + "x" * 43
    assert key not in credential_fingerprint(key)
    assert credential_fingerprint(key) == credential_fingerprint(key)


def test_one_touch_per_key_per_interval_whatever_each_request_read() -> None:
    clock = Clock()
    throttle = KeyUseThrottle(timedelta(seconds=60), clock)
    # A hundred requests that all read last_used_at = None: one of them writes.
    assert sum(throttle.should_touch(7, None) for _ in range(100)) == 1
    assert throttle.should_touch(8, None)  # another key is another decision
    clock.now += timedelta(seconds=59)
    assert not throttle.should_touch(7, None)
    clock.now += timedelta(seconds=1)
    assert throttle.should_touch(7, START)
    # A use recorded by another process recently is respected too.
    assert not throttle.should_touch(9, clock.now - timedelta(seconds=10))


def test_pooled_readers_are_reused_and_see_every_commit(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "cvp.db")
    pool = ReaderPool(tmp_path / "cvp.db", max_idle=1)
    try:
        with pool.borrow() as first:
            assert first.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        writer.create_user("ada", "hash", "admin")
        with pool.borrow() as again:
            assert again is first  # the same connection, back from the pool...
            assert again.execute("SELECT count(*) FROM users").fetchone()[0] == 1  # ...not stale
            with pool.borrow() as second:  # a second borrower gets its own connection
                assert second is not again
        with pool.borrow() as kept:
            assert kept in (first, second)
    finally:
        pool.close()
        writer.close()
