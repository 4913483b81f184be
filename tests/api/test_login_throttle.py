"""Login throttling over ASGI from several client addresses: buckets per address and for the
whole API, a back-off per (name, address), and no store write for a failed login (issue 10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cvplatform.errors import InvalidCredentials, LoginLocked, LoginThrottled
from tests.api_harness import ADMIN_PASSWORD, InProcessApi, error_of, in_process_api
from tests.helpers import unique

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"
# The platform's defaults, not the harness's generous test limits.
DEFAULT_LIMITS = {
    "login_per_address_per_minute": 30,
    "login_global_per_minute": 600,
    "login_max_failures": 5,
    "login_lockout_s": 900,
}


@pytest.fixture
async def defaults(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    async with in_process_api(tmp_path / "data", **DEFAULT_LIMITS) as api:
        yield api


async def _log_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post(LOGIN, json={"username": username, "password": password})


def _writes_besides_audit(api: InProcessApi) -> dict[str, int]:
    # The audit trail of denied logins is recorded (and aggregated) by the guard; nothing else.
    return {op: count for op, count in api.store.calls.items() if "audit" not in op}


def _rows(api: InProcessApi, table: str) -> int:
    with api.state.readers.borrow() as db:
        count: int = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
    return count


async def test_a_flood_against_admin_from_one_address_leaves_admin_able_to_log_in(
    defaults: InProcessApi,
) -> None:
    api = defaults
    async with (
        api.from_address("10.0.0.66") as stranger,
        api.from_address("10.0.0.1") as real_admin,
    ):
        guesses = [_log_in(stranger, "admin", f"guess-{n}") for n in range(50)]
        # The real admin logs in in the middle of the flood, all 51 requests in flight at once.
        answers = await asyncio.gather(
            *guesses[:25], _log_in(real_admin, "admin", ADMIN_PASSWORD), *guesses[25:]
        )
        admin_answer, flood = answers[25], answers[:25] + answers[26:]
        assert admin_answer.status_code == 200, admin_answer.text
        assert admin_answer.json()["token_type"] == "bearer"
        statuses = sorted(answer.status_code for answer in flood)
        # max_failures passwords were checked, though all 50 were in flight at once.
        assert (statuses.count(401), statuses.count(429)) == (5, 45)
        codes = {error_of(answer)["code"] for answer in flood if answer.status_code == 429}
        assert codes <= {"login_locked", "login_throttled"}
        # The stranger's address is held off even with the right password...
        held_off = await _log_in(stranger, "admin", ADMIN_PASSWORD)
        assert held_off.status_code == 429
        assert int(held_off.headers["retry-after"]) >= 1
        # ...while the admin, from elsewhere, logs in again at once.
        assert (await _log_in(real_admin, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_an_address_out_of_attempts_gets_429_with_retry_after(tmp_path: Path) -> None:
    async with (
        in_process_api(tmp_path / "data", login_per_address_per_minute=3) as api,
        api.from_address("10.0.0.7") as busy,
    ):
        for _ in range(3):  # a different name each time: the bucket, not the back-off
            assert (await _log_in(busy, unique("nobody"), "x")).status_code == 401
        refused = await _log_in(busy, "admin", ADMIN_PASSWORD)
        assert refused.status_code == 429
        assert error_of(refused, LoginThrottled)["code"] == "login_throttled"
        assert refused.headers["retry-after"] == "20"  # one attempt per 20 s at 3 a minute
        async with api.from_address("10.0.0.8") as other:
            assert (await _log_in(other, "admin", ADMIN_PASSWORD)).status_code == 200
        # The bucket refills with the injected clock, one token per 20 s.
        api.clock.advance(19)
        early = await _log_in(busy, "admin", ADMIN_PASSWORD)
        assert (early.status_code, early.headers["retry-after"]) == (429, "1")
        api.clock.advance(1)
        assert (await _log_in(busy, "admin", ADMIN_PASSWORD)).status_code == 200
        assert (await _log_in(busy, "admin", ADMIN_PASSWORD)).status_code == 429


async def test_the_global_bucket_bounds_logins_from_all_addresses(tmp_path: Path) -> None:
    async with in_process_api(tmp_path / "data", login_global_per_minute=4) as api:
        for host in range(4):
            async with api.from_address(f"10.0.1.{host}") as client:
                assert (await _log_in(client, unique("nobody"), "x")).status_code == 401
        async with api.from_address("10.0.1.200") as newcomer:
            refused = await _log_in(newcomer, "admin", ADMIN_PASSWORD)
            assert refused.status_code == 429
            assert error_of(refused, LoginThrottled)["code"] == "login_throttled"
            assert refused.headers["retry-after"] == "15"
            api.clock.advance(15)
            assert (await _log_in(newcomer, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_back_off_is_per_name_and_address(tmp_path: Path) -> None:
    async with (
        in_process_api(tmp_path / "data", login_max_failures=3, login_lockout_s=60) as api,
        api.from_address("10.0.2.1") as guesser,
    ):
        for _ in range(3):
            wrong = await _log_in(guesser, "admin", "wrong")
            assert error_of(wrong, InvalidCredentials)["code"] == "invalid_credentials"
        for name in ("admin", "ADMIN"):  # names are one whatever their case
            locked = await _log_in(guesser, name, ADMIN_PASSWORD)
            assert locked.status_code == 429
            assert error_of(locked, LoginLocked)["code"] == "login_locked"
            assert locked.headers["retry-after"] == "60"
        # Another name from the same address is not held back.
        assert (await _log_in(guesser, unique("other"), "wrong")).status_code == 401
        async with api.from_address("10.0.2.2") as owner:
            assert (await _log_in(owner, "admin", ADMIN_PASSWORD)).status_code == 200
        api.clock.advance(59)
        assert (await _log_in(guesser, "admin", ADMIN_PASSWORD)).headers["retry-after"] == "1"
        api.clock.advance(1)
        assert (await _log_in(guesser, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_a_success_clears_the_failures_of_its_address(tmp_path: Path) -> None:
    async with in_process_api(tmp_path / "data", login_max_failures=3) as api:
        for _ in range(2):
            assert (await _log_in(api.http, "admin", "wrong")).status_code == 401
        assert (await _log_in(api.http, "admin", ADMIN_PASSWORD)).status_code == 200
        for _ in range(2):
            assert (await _log_in(api.http, "admin", "wrong")).status_code == 401
        assert (await _log_in(api.http, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_failed_and_throttled_logins_write_nothing_to_the_store(tmp_path: Path) -> None:
    async with in_process_api(
        tmp_path / "data", login_per_address_per_minute=5, login_max_failures=2
    ) as api:
        sessions_before = _rows(api, "sessions")
        api.store.calls.clear()
        statuses = [
            (await _log_in(api.http, name, "wrong")).status_code
            for name in ("admin", "admin", "admin", unique("nobody"), unique("nobody"), "admin")
        ]
        # 2 failures, then admin backs off; 2 unknown names fail; the address is then spent.
        assert statuses == [401, 401, 429, 401, 401, 429]
        assert _writes_besides_audit(api) == {}
        assert (_rows(api, "sessions"), _rows(api, "login_failures")) == (sessions_before, 0)
