"""A store call whose caller stopped waiting is not run: the store actor (its class, here without
Ray, over a real SQLite file) refuses an operation it reaches after the call's deadline, so the
API's 503 on a timeout means that nothing was written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cvplatform.config import Settings
from cvplatform.errors import StoreUnavailable
from store import queries
from store.actor import StoreActor
from store.connections import open_reader
from store.operations import call_deadline, refuse_if_late

SECRET = "the-platforms-store-secret"


def test_an_operation_reached_after_its_deadline_is_refused() -> None:
    refuse_if_late(None, now=1e12)  # no deadline: the scheduler and jobs wait as long as it takes
    refuse_if_late(100.0, now=100.0)
    with pytest.raises(StoreUnavailable, match="after its caller stopped waiting"):
        refuse_if_late(100.0, now=100.5)


def test_no_deadline_is_set_outside_a_timed_call() -> None:
    assert call_deadline.get() is None


def _probe_rows(settings: Settings) -> list[str]:
    reader = open_reader(settings.db_path)
    try:
        entries = queries.audit_entries(reader, 100, 0)
        return [str(entry["resource"]) for entry in entries if entry["action"] == "probe"]
    finally:
        reader.conn.close()


def test_the_store_actor_runs_nothing_for_a_caller_that_gave_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = StoreActor(settings, SECRET)
    try:
        late = {"action": "probe", "resource": "late", "result": 200}
        with pytest.raises(StoreUnavailable):
            store.call("append_audit", late, SECRET, time.time() - 1)
        assert _probe_rows(settings) == []

        in_time = {"action": "probe", "resource": "in time", "result": 200}
        store.call("append_audit", in_time, SECRET, time.time() + 30)
        store.call("append_audit", {**in_time, "resource": "untimed"}, SECRET)
        assert sorted(_probe_rows(settings)) == ["in time", "untimed"]
    finally:
        store.close(SECRET)
