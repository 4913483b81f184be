"""The audit log's store writes against a real SQLite file: batches, merged rows, the purge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import queries
from store.writer import StoreWriter


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    store_writer = StoreWriter(tmp_path / "cvp.db")
    yield store_writer
    store_writer.close()


def _row(at: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "at": at,
        "action": "list_models",
        "resource": "GET /api/v1/models",
        "result": 200,
        "user_id": 1,
        "username": "admin",
        "request_id": None,
        "detail": None,
        "address": "127.0.0.1",
        "count": 1,
        "merge": False,
    }
    row.update(values)
    return row


def _failed_login(at: str, count: int, **values: Any) -> dict[str, Any]:
    login = {
        "action": "login",
        "resource": "POST /api/v1/auth/login",
        "result": 401,
        "user_id": None,
        "address": "203.0.113.7",
        "count": count,
        "merge": True,
    }
    return _row(at, **{**login, **values})


def _all(writer: StoreWriter) -> list[dict[str, Any]]:
    return list(reversed(queries.audit_entries(writer._db, 1000, 0)))


def test_a_batch_is_written_with_its_own_times_and_addresses(writer: StoreWriter) -> None:
    rows = [
        _row(f"2026-11-26T16:31:{second:02d}.000+00:00", request_id=f"r{second}")
        for second in range(5)
    ]
    assert writer.append_audit_batch(rows=rows) == 5
    written = _all(writer)
    assert [(row["at"], row["request_id"], row["address"], row["count"]) for row in written] == [
        (row["at"], row["request_id"], "127.0.0.1", 1) for row in rows
    ]


def test_merged_rows_add_to_the_row_of_their_minute_across_batches(writer: StoreWriter) -> None:
    writer.append_audit_batch(
        rows=[_failed_login("2026-11-26T16:31:05.000+00:00", 20, username="admin")]
    )
    writer.append_audit_batch(
        rows=[
            _failed_login("2026-11-26T16:31:40.000+00:00", 30, username="admin"),
            _failed_login("2026-11-26T16:32:01.000+00:00", 2, username="admin"),  # next minute
            _failed_login("2026-11-26T16:31:50.000+00:00", 1, address="198.51.100.1"),
            _failed_login("2026-11-26T16:31:55.000+00:00", 4, result=429, username="admin"),
        ]
    )
    writer.append_audit_batch(
        rows=[_failed_login("2026-11-26T16:31:59.000+00:00", 1, username="root")]
    )
    by_key = {(row["at"][:16], row["address"], row["result"]): row for row in _all(writer)}
    assert len(by_key) == 4 == len(_all(writer))
    flood = by_key[("2026-11-26T16:31", "203.0.113.7", 401)]
    # The row keeps its first time; a second name tried makes it name none.
    assert (flood["count"], flood["at"], flood["username"]) == (
        51,
        "2026-11-26T16:31:05.000+00:00",
        None,
    )
    assert by_key[("2026-11-26T16:32", "203.0.113.7", 401)]["count"] == 2
    assert by_key[("2026-11-26T16:31", "198.51.100.1", 401)]["count"] == 1
    assert by_key[("2026-11-26T16:31", "203.0.113.7", 429)]["count"] == 4


def test_a_batch_is_one_transaction(writer: StoreWriter) -> None:
    good = _row("2026-11-26T16:31:00.000+00:00")
    with pytest.raises(KeyError):
        writer.append_audit_batch(rows=[good, {"at": "2026-11-26T16:31:01.000+00:00"}])
    assert _all(writer) == []


def test_the_purge_deletes_only_older_rows_in_bounded_chunks(writer: StoreWriter) -> None:
    old = [_row(f"2026-08-01T00:00:{second:02d}.000+00:00") for second in range(5)]
    recent = _row("2026-11-01T00:00:00.000+00:00")
    writer.append_audit_batch(rows=[*old, recent])
    cutoff = "2026-09-01T00:00:00.000+00:00"
    assert writer.purge_audit(before=cutoff, limit=2) == 2
    assert writer.purge_audit(before=cutoff, limit=2) == 2
    assert writer.purge_audit(before=cutoff, limit=2) == 1
    assert writer.purge_audit(before=cutoff, limit=2) == 0
    assert [row["at"] for row in _all(writer)] == [recent["at"]]


def test_one_row_from_the_cli_is_stamped_now(writer: StoreWriter) -> None:
    writer.append_audit(
        action="create_user", resource="cvp user create", result=0, username="cli:me"
    )
    (row,) = _all(writer)
    assert (row["count"], row["address"], row["username"]) == (1, None, "cli:me")
