"""How long an API key lives: an expiry stored with the key, shown in listings and enforced from
its time on (cached or not, with the injected clock); a revocation that outlives a restore."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cvplatform.clock import from_iso
from cvplatform.errors import ApiKeyExpired, TokenRevoked
from cvplatform.schemas import API_KEY_MAX_DAYS
from store.backup import backup_database, restore_database
from tests.api_harness import Caller, InProcessApi, error_of

pytestmark = pytest.mark.anyio

KEYS = "/api/v1/auth/api-keys"
ME = "/api/v1/auth/me"


async def test_a_key_is_refused_from_its_expiry_even_while_cached(
    api: InProcessApi, engineer: Caller
) -> None:
    answer = await api.http.post(
        KEYS, json={"name": "ci", "expires_in_days": 30}, headers=engineer.headers
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    expires_at = from_iso(created["expires_at"])
    assert expires_at - from_iso(created["created_at"]) == timedelta(days=30)
    listed = (await api.http.get(KEYS, headers=engineer.headers)).json()
    assert [key["expires_at"] for key in listed] == [created["expires_at"]]

    keyed = {"X-API-Key": created["key"]}
    api.clock.now = expires_at - timedelta(seconds=0.5)
    assert (await api.http.get(ME, headers=keyed)).status_code == 200  # and now cached
    api.clock.advance(0.5)
    assert api.clock() - (expires_at - timedelta(seconds=0.5)) < timedelta(
        seconds=api.settings.auth_cache_s
    ), "the cache entry is still fresh: the expiry must be checked on it"
    refused = await api.http.get(ME, headers=keyed)
    assert refused.status_code == 401
    error = error_of(refused, ApiKeyExpired)
    assert error["code"] == "api_key_expired"
    assert created["expires_at"] in error["message"]
    api.clock.advance(api.settings.auth_cache_s + 1)  # the store's answer, not the cache's
    assert error_of(await api.http.get(ME, headers=keyed))["code"] == "api_key_expired"


async def test_a_key_without_expiry_never_expires(api: InProcessApi, viewer: Caller) -> None:
    created = await api.api_key(viewer.headers, "forever")
    assert created["expires_at"] is None
    api.clock.advance(timedelta(days=API_KEY_MAX_DAYS + 365).total_seconds())
    answer = await api.http.get(ME, headers={"X-API-Key": created["key"]})
    assert answer.status_code == 200


@pytest.mark.parametrize("days", [0, -1, API_KEY_MAX_DAYS + 1, 1.5, "soon", 10**30])
async def test_an_expiry_out_of_range_is_422(
    api: InProcessApi, viewer: Caller, days: object
) -> None:
    answer = await api.http.post(
        KEYS, json={"name": "bad", "expires_in_days": days}, headers=viewer.headers
    )
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    fields = answer.json()["error"]["fields"]
    assert [entry["location"] for entry in fields] == ["body.expires_in_days"]
    assert (await api.http.get(KEYS, headers=viewer.headers)).json() == []


async def test_a_key_revoked_after_a_backup_stays_refused_after_a_restore(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    revoked_later = await api.api_key(engineer.headers, "revoked after the backup")
    kept = await api.api_key(engineer.headers, "kept")
    backup = backup_database(api.settings.db_path, tmp_path / "backup.db")
    path = f"{KEYS}/{revoked_later['id']}"
    assert (await api.http.delete(path, headers=engineer.headers)).status_code == 200

    # The in-process store's connection stays open but idle, as a stopped platform's would not.
    restored = restore_database(backup, api.settings.db_path, clock=api.clock)
    assert restored.keys_kept_revoked == 1
    api.clock.advance(api.settings.auth_cache_s + 1)  # what the API cached is stale by now
    refused = await api.http.get(ME, headers={"X-API-Key": revoked_later["key"]})
    assert refused.status_code == 401
    assert error_of(refused, TokenRevoked)["code"] == "token_revoked"
    assert (await api.http.get(ME, headers={"X-API-Key": kept["key"]})).status_code == 200
    # and every login session of the backup is revoked
    assert error_of(await api.http.get(ME, headers=engineer.headers))["code"] == "token_revoked"
