"""The login throttle's decisions, with the clock passed in: buckets, back-off, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cvplatform.errors import LoginLocked, LoginThrottled
from serve_apps.auth.throttle import FailureBackOff, LoginThrottle, TokenBuckets, retry_after_s

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert [retry_after_s(s) for s in (0.0, 0.2, 1.0, 1.01, 59.5)] == [1, 1, 1, 2, 60]


def test_a_bucket_holds_a_minutes_worth_and_refills_one_token_per_interval() -> None:
    buckets = TokenBuckets(per_minute=6)  # one token per 10 s, six at most
    assert [buckets.take("a", START) for _ in range(6)] == [0.0] * 6
    assert buckets.take("a", START) == 10.0
    assert buckets.take("a", at(9.5)) == 0.5
    assert buckets.take("a", at(10)) == 0.0
    assert buckets.take("a", at(10)) == 10.0
    # A long rest refills it to six, never more.
    assert [buckets.take("a", at(3600)) for _ in range(7)][-2:] == [0.0, 10.0]
    assert buckets.take("b", at(3600)) == 0.0  # each key has its own


def test_a_bucket_of_less_than_one_a_minute_holds_one() -> None:
    buckets = TokenBuckets(per_minute=0.5)
    assert (buckets.take("a", START), buckets.take("a", START)) == (0.0, 120.0)
    assert buckets.take("a", at(120)) == 0.0


def test_a_refused_attempt_does_not_push_the_refill_back() -> None:
    buckets = TokenBuckets(per_minute=1)
    buckets.take("a", START)
    for second in range(1, 60):
        assert buckets.take("a", at(second)) == 60 - second
    assert buckets.take("a", at(60)) == 0.0


def test_buckets_are_forgotten_once_refilled_and_never_grow_past_their_bound() -> None:
    buckets = TokenBuckets(per_minute=30, max_keys=100)
    for n in range(1_000):  # a flood from made-up addresses
        buckets.take(f"10.{n // 256}.{n % 256}.1", START)
    assert len(buckets) == 100
    buckets.take("10.255.255.1", at(60))  # a minute on, every other bucket is full again
    assert len(buckets) == 1


def test_back_off_after_max_failures_for_the_lockout_then_starts_afresh() -> None:
    back_off = FailureBackOff(max_failures=3, lockout=timedelta(seconds=60))
    key = ("admin", "10.0.0.1")
    for second in range(3):
        assert back_off.reserve(key, at(second)) == 0.0
        back_off.failed(key, at(second))
    assert back_off.reserve(key, at(2)) == 60.0
    assert back_off.reserve(("admin", "10.0.0.2"), at(3)) == 0.0
    assert back_off.reserve(key, at(61.5)) == 0.5  # fixed: attempts meanwhile do not extend it
    assert back_off.reserve(key, at(62)) == 0.0
    back_off.failed(key, at(62))
    assert back_off.reserve(key, at(62)) == 0.0  # one failure counted again, not three


def test_parallel_attempts_get_at_most_max_failures_password_checks() -> None:
    back_off = FailureBackOff(max_failures=3, lockout=timedelta(seconds=60))
    key = ("admin", "10.0.0.1")
    assert [back_off.reserve(key, START) for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]
    back_off.abandoned(key)  # one ended without a verdict: its place is free again
    assert back_off.reserve(key, START) == 0.0


def test_a_success_clears_the_failures_and_quiet_ones_are_forgotten() -> None:
    back_off = FailureBackOff(max_failures=3, lockout=timedelta(seconds=60))
    key = ("admin", "10.0.0.1")
    for _ in range(2):
        back_off.reserve(key, START)
        back_off.failed(key, START)
    back_off.reserve(key, START)
    back_off.succeeded(key)
    assert len(back_off) == 0
    back_off.reserve(key, START)
    back_off.failed(key, START)
    back_off.reserve(("eve", "10.0.0.1"), at(60))  # a lockout later the quiet one is gone
    assert len(back_off) == 1


def test_back_off_entries_are_bounded() -> None:
    back_off = FailureBackOff(max_failures=3, lockout=timedelta(seconds=60), max_entries=50)
    for n in range(500):  # a spray of made-up names
        back_off.reserve((f"name-{n}", "10.0.0.1"), START)
        back_off.failed((f"name-{n}", "10.0.0.1"), START)
    assert len(back_off) == 50


def _throttle(clock: Clock, **limits: float) -> LoginThrottle:
    settings: dict[str, float] = {
        "per_address_per_minute": 30,
        "global_per_minute": 600,
        "max_failures": 5,
    }
    settings.update(limits)
    return LoginThrottle(
        clock,
        per_address_per_minute=settings["per_address_per_minute"],
        global_per_minute=settings["global_per_minute"],
        max_failures=int(settings["max_failures"]),
        lockout=timedelta(seconds=900),
    )


def test_the_address_bucket_comes_first_and_spends_nothing_of_the_global_one() -> None:
    clock = Clock()
    throttle = _throttle(clock, per_address_per_minute=2, global_per_minute=3)
    for _ in range(2):
        throttle.admit("10.0.0.66", "admin")
        throttle.settle("10.0.0.66", "admin", succeeded=False)
    for _ in range(100):  # the flood's address is spent; the global bucket is not touched
        with pytest.raises(LoginThrottled) as refused:
            throttle.admit("10.0.0.66", "admin")
        assert refused.value.retry_after_s == 30
    throttle.admit("10.0.0.1", "admin")
    with pytest.raises(LoginThrottled) as everyone:  # three in a minute for the whole API
        throttle.admit("10.0.0.2", "admin")
    assert everyone.value.headers() == {"Retry-After": "20"}


def test_the_name_check_comes_after_the_buckets_and_is_per_address() -> None:
    clock = Clock()
    throttle = _throttle(clock, max_failures=2)
    for _ in range(2):
        throttle.admit("10.0.0.66", "Admin")
        throttle.settle("10.0.0.66", "Admin", succeeded=False)
    with pytest.raises(LoginLocked) as locked:
        throttle.admit("10.0.0.66", "admin")  # the same name whatever its case
    assert type(locked.value) is LoginLocked
    assert locked.value.retry_after_s == 900
    throttle.admit("10.0.0.1", "admin")  # the owner, elsewhere
    throttle.settle("10.0.0.1", "admin", succeeded=True)
    assert len(throttle.by_address) == 2
    clock.advance(900)
    throttle.admit("10.0.0.66", "admin")


def test_a_bucket_of_given_capacity_and_whether_it_is_empty() -> None:
    buckets = TokenBuckets(per_minute=1 / 3, capacity=5)  # 5 failures per 15 minutes
    assert not buckets.empty("a", START)  # unknown: full
    for _ in range(5):
        buckets.take("a", START)
    assert buckets.empty("a", START)
    assert buckets.take("a", START) == 180.0
    assert buckets.empty("a", at(179))
    assert not buckets.empty("a", at(180))


def test_an_address_that_keeps_failing_is_suspect_whatever_the_names() -> None:
    clock = Clock()
    throttle = _throttle(clock, max_failures=3)
    for n in range(3):
        assert not throttle.suspect("10.0.0.66")
        throttle.admit("10.0.0.66", f"made-up-{n}")
        throttle.settle("10.0.0.66", f"made-up-{n}", succeeded=False)
    assert throttle.suspect("10.0.0.66")
    assert not throttle.suspect("10.0.0.1")
    clock.advance(300)  # one failure's worth back after a third of the lockout
    assert not throttle.suspect("10.0.0.66")
