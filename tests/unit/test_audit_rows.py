"""The audit trail's plain parts: which requests are audited, the buffer, the spool, upkeep."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serve_apps.api.audit_rows import AuditBuffer, AuditRow, is_aggregated, is_audited
from serve_apps.api.audit_spool import AuditSpool
from serve_apps.api.audit_upkeep import FailureStreak, PurgeSchedule
from serve_apps.auth.policy import Action

MINUTE = "2026-11-26T16:31"


@pytest.mark.parametrize(
    ("action", "method", "status", "audited"),
    [
        (Action.RESOURCES_READ, "GET", 200, True),  # models, datasets, jobs, reports, config
        (Action.RESOURCES_READ, "GET", 404, True),
        (Action.USERS_MANAGE, "GET", 200, True),
        (Action.SYSTEM_MONITOR, "GET", 200, True),  # reading the audit log is audited too
        (Action.RESOURCES_UPLOAD, "POST", 201, True),
        (Action.RESOURCES_DELETE, "DELETE", 204, True),
        (Action.SELF, "POST", 201, True),  # creating one's API key is a change
        (Action.PUBLIC, "POST", 200, True),  # a login
        (Action.PUBLIC, "GET", 200, False),  # liveness, readiness, the API documents
        (Action.SELF, "GET", 200, False),  # who am I, one's own keys
        (Action.RESOURCES_UPLOAD, "HEAD", 200, False),  # an upload's progress
        (Action.INFERENCE_RUN, "GET", 200, False),  # predictions: counted in the metrics
        (Action.SELF, "GET", 401, True),  # every denial
        (Action.RESOURCES_UPLOAD, "HEAD", 403, True),
    ],
)
def test_which_requests_are_audited(
    action: Action, method: str, status: int, audited: bool
) -> None:
    assert is_audited(action, method, status) is audited


def test_only_failed_and_throttled_logins_are_aggregated() -> None:
    assert is_aggregated(Action.PUBLIC, 401) and is_aggregated(Action.PUBLIC, 429)
    assert not is_aggregated(Action.PUBLIC, 200)
    assert not is_aggregated(Action.USERS_MANAGE, 401)  # a bad token at a route: its own row


def _login(
    second: int, result: int = 401, address: str = "203.0.113.7", **more: object
) -> AuditRow:
    return AuditRow(
        at=f"{MINUTE}:{second:02d}.000+00:00",
        action="login",
        resource="POST /api/v1/auth/login",
        result=result,
        username=str(more.get("username", "admin")),
        address=address,
        merge=True,
    )


def _read(request_id: str) -> AuditRow:
    return AuditRow(
        at=f"{MINUTE}:00.000+00:00",
        action="list_models",
        resource="GET /api/v1/models",
        result=200,
        request_id=request_id,
    )


def test_equal_failed_logins_of_one_minute_become_one_row_with_a_count() -> None:
    buffer = AuditBuffer()
    for second in range(50):
        buffer.add(_login(second % 60))
    buffer.add(_login(1, result=429))
    buffer.add(_login(2, address="198.51.100.1"))
    buffer.add(_read("r1"))
    rows = buffer.take(10)
    assert [(row.result, row.address, row.count) for row in rows] == [
        (401, "203.0.113.7", 50),
        (429, "203.0.113.7", 1),
        (401, "198.51.100.1", 1),
        (200, None, 1),
    ]


def test_a_new_minute_starts_a_new_row_and_several_names_name_none() -> None:
    buffer = AuditBuffer()
    buffer.add(_login(10, username="admin"))
    buffer.add(_login(20, username="root"))
    next_minute = _login(0)
    next_minute.at = "2026-11-26T16:32:00.000+00:00"
    buffer.add(next_minute)
    first, second = buffer.take(10)
    assert (first.count, first.username) == (2, None)
    assert (second.count, second.username) == (1, "admin")


def test_a_batch_put_back_keeps_its_place_and_absorbs_what_came_since() -> None:
    buffer = AuditBuffer()
    buffer.add(_read("r1"))
    buffer.add(_login(1))
    batch = buffer.take(10)
    buffer.add(_login(2))  # while the batch was being written: a new row for the key
    buffer.add(_read("r2"))
    buffer.put_back(batch)
    rows = buffer.rows()
    assert [(row.request_id, row.count) for row in rows] == [("r1", 1), (None, 2), ("r2", 1)]
    buffer.add(_login(3))  # joins the put-back row, not a new one
    assert [row.count for row in buffer.take(10)] == [1, 3, 1]
    assert len(buffer) == 0


def test_the_spool_keeps_rows_across_processes_and_skips_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "audit-spool.jsonl"
    spool = AuditSpool(path)
    assert spool.load() == []
    spool.append(_read("r1"))
    spool.append(_login(5))
    spool.close()
    with path.open("a", encoding="utf-8") as cut:
        cut.write('{"at": "2026-11-26T16:3')  # the process died mid-line
    rows = AuditSpool(path).load()
    assert rows == [_read("r1"), _login(5)]


def test_the_spool_is_rewritten_with_the_rows_still_waiting(tmp_path: Path) -> None:
    path = tmp_path / "audit-spool.jsonl"
    spool = AuditSpool(path)
    for name in ("r1", "r2", "r3"):
        spool.append(_read(name))
    spool.rewrite([_read("r3")])
    spool.append(_read("r4"))  # appends go on after a rewrite
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == [
        "r3",
        "r4",
    ]
    spool.rewrite([])
    assert not path.exists()


def test_a_spool_line_that_is_not_a_row_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "audit-spool.jsonl"
    path.write_text('{"at": 5, "action": "x", "resource": "y", "result": 200}\n[1, 2]\n\n')
    assert AuditSpool(path).load() == []


def test_the_purge_runs_at_start_then_once_per_interval() -> None:
    start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    schedule = PurgeSchedule(timedelta(days=90), timedelta(days=1))
    assert schedule.cutoff_if_due(start) == "2026-08-28T12:00:00.000+00:00"
    schedule.ran(start)
    assert schedule.cutoff_if_due(start + timedelta(hours=23, minutes=59)) is None
    assert schedule.cutoff_if_due(start + timedelta(days=1)) == "2026-08-29T12:00:00.000+00:00"


def test_a_failure_streak_warns_once_then_turns_critical_once() -> None:
    start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    streak = FailureStreak(timedelta(minutes=1))
    warning = streak.failed(start, 3, "StoreUnavailable: down")
    assert warning is not None and warning.severity == "warning"
    assert warning.details["rows_waiting"] == 3
    # Not written (the store refused the alert too): called for again.
    assert streak.failed(start + timedelta(seconds=1), 4, "down") == streak.failed(
        start + timedelta(seconds=1), 4, "down"
    )
    streak.alert_written(warning)
    assert streak.failed(start + timedelta(seconds=30), 5, "down") is None
    critical = streak.failed(start + timedelta(seconds=60), 6, "down")
    assert critical is not None and critical.severity == "critical"
    streak.alert_written(critical)
    assert streak.failed(start + timedelta(minutes=5), 7, "down") is None
    assert streak.succeeded() == start
    assert streak.succeeded() is None
    again = streak.failed(start + timedelta(minutes=6), 1, "down")  # a new streak warns again
    assert again is not None and again.severity == "warning"
