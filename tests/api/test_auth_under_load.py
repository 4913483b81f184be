"""Authentication under many concurrent requests: one lookup and at most one write per key, and
revocation that still takes effect (issue 18)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.api_harness import InProcessApi, in_process_api

pytestmark = pytest.mark.anyio

CONCURRENT = 100


async def _burst(api: InProcessApi, headers: dict[str, str], path: str) -> list[int]:
    """``CONCURRENT`` requests in flight at once, while the store is slow to answer."""
    with api.store.busy():
        requests = [
            asyncio.create_task(api.http.get(path, headers=headers)) for _ in range(CONCURRENT)
        ]
        # Until every request has either answered or queued a store write.
        for _ in range(500):
            finished = sum(request.done() for request in requests)
            if finished + api.store.calls["touch_api_key"] >= CONCURRENT:
                break
            await asyncio.sleep(0.01)
    answers = await asyncio.gather(*requests)
    return [answer.status_code for answer in answers]


async def test_a_hundred_concurrent_requests_with_one_key_touch_it_once(tmp_path: Path) -> None:
    async with in_process_api(tmp_path) as api:
        key = await api.api_key(await api.admin())
        headers = {"X-API-Key": key["key"]}
        api.store.calls.clear()
        assert await _burst(api, headers, "/api/v1/models") == [200] * CONCURRENT
        assert api.store.calls["touch_api_key"] == 1
        # Past the touch interval (and the cache's lifetime) the next burst writes once more.
        api.clock.advance(61)
        assert await _burst(api, headers, "/api/v1/models") == [200] * CONCURRENT
        assert api.store.calls["touch_api_key"] == 2
        listed = await api.http.get("/api/v1/auth/api-keys", headers=headers)
        assert listed.json()[0]["last_used_at"] is not None


async def test_a_key_revoked_elsewhere_is_refused_once_the_cache_entry_expires(
    tmp_path: Path,
) -> None:
    async with in_process_api(tmp_path, auth_cache_s=2) as api:
        admin = await api.admin()
        key = await api.api_key(admin)
        headers = {"X-API-Key": key["key"]}
        assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
        # Revoked behind the API's back (as `cvp` or another process would do it).
        api.store.run_sync("revoke_api_key", user_id=1, key_id=key["id"])
        api.clock.advance(1.9)
        assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
        api.clock.advance(0.2)
        refused = await api.http.get("/api/v1/auth/me", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_revoked"


async def test_revoking_through_the_api_applies_at_once(tmp_path: Path) -> None:
    async with in_process_api(tmp_path) as api:
        admin = await api.admin()
        key = await api.api_key(admin)
        headers = {"X-API-Key": key["key"]}
        assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
        revoked = await api.http.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=admin)
        assert revoked.status_code == 200
        assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 401
        # Logging out ends the cached token too.
        assert (await api.http.post("/api/v1/auth/logout", headers=admin)).status_code == 204
        assert (await api.http.get("/api/v1/auth/me", headers=admin)).status_code == 401


async def test_a_role_change_applies_to_the_next_request(tmp_path: Path) -> None:
    async with in_process_api(tmp_path) as api:
        admin = await api.admin()
        created = await api.http.post(
            "/api/v1/users",
            json={"username": "erin", "password": "a long pass phrase", "role": "engineer"},
            headers=admin,
        )
        erin = await api.login("erin", "a long pass phrase")
        assert (await api.http.get("/api/v1/models", headers=erin)).status_code == 200
        changed = await api.http.patch(
            f"/api/v1/users/{created.json()['id']}", json={"role": "viewer"}, headers=admin
        )
        assert changed.status_code == 200
        assert (await api.http.get("/api/v1/models", headers=erin)).status_code == 403


async def test_a_cached_token_still_expires_on_time(tmp_path: Path) -> None:
    async with in_process_api(tmp_path, auth_cache_s=60, session_hours=1) as api:
        admin = await api.admin()
        assert (await api.http.get("/api/v1/auth/me", headers=admin)).status_code == 200
        api.clock.advance(3600)
        expired = await api.http.get("/api/v1/auth/me", headers=admin)
        assert expired.json()["error"]["code"] == "token_expired"
