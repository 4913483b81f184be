"""The single writer against a real SQLite file (no Ray)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cvplatform.errors import (
    DuplicateRecord,
    LastAdminError,
    RecordNotFound,
    StoreUnavailable,
)
from store import queries
from store.connections import open_reader
from store.schema import LATEST_VERSION, schema_version
from store.writer import StoreWriter


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    store_writer = StoreWriter(tmp_path / "cvp.db", busy_timeout_s=0.2)
    yield store_writer
    store_writer.close()


def test_migrations_apply_once_and_wal_is_on(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "cvp.db").close()
    again = StoreWriter(tmp_path / "cvp.db")  # a second start applies nothing new
    assert schema_version(again._db) == LATEST_VERSION
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"users", "api_keys", "sessions", "audit_log", "artifacts"} <= set(
        again._db.table_names()
    )
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "cvp.db")
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this release"):
        StoreWriter(tmp_path / "cvp.db")


def test_users_and_duplicate_names(writer: StoreWriter) -> None:
    alice = writer.create_user("alice", "hash", "engineer")
    assert alice.username == "alice" and alice.role == "engineer"
    with pytest.raises(DuplicateRecord):
        writer.create_user("ALICE", "hash", "viewer")  # names are case-insensitive


def test_last_admin_can_be_neither_deleted_nor_demoted(writer: StoreWriter) -> None:
    assert writer.ensure_first_admin("hash") is True
    assert writer.ensure_first_admin("hash") is False
    admin = queries.user_credentials(writer._db, "admin")
    assert admin is not None
    with pytest.raises(LastAdminError):
        writer.delete_user(admin["id"])
    with pytest.raises(LastAdminError):
        writer.set_role(admin["id"], "viewer")
    second = writer.create_user("root2", "hash", "admin")
    writer.set_role(admin["id"], "viewer")  # fine now: root2 is admin
    with pytest.raises(LastAdminError):
        writer.delete_user(second.id)


def test_deleting_a_user_removes_sessions_and_keys_but_not_the_audit_trail(
    writer: StoreWriter,
) -> None:
    bob = writer.create_user("bob", "hash", "viewer")
    writer.create_session("s1", bob.id, "2999-01-01T00:00:00.000+00:00")
    writer.create_api_key(bob.id, "k", "cvp_00000000", "h" * 64)
    writer.append_audit(action="login", resource="POST /x", result=200, user_id=bob.id)
    writer.delete_user(bob.id)
    assert queries.session_for_auth(writer._db, "s1") is None
    assert queries.api_key_for_auth(writer._db, "cvp_00000000") is None
    assert queries.audit_entries(writer._db, 10, 0, user_id=bob.id)[0]["action"] == "login"
    with pytest.raises(RecordNotFound):
        writer.delete_user(bob.id)


def test_api_key_revoked_only_by_its_owner(writer: StoreWriter) -> None:
    owner = writer.create_user("owner", "hash", "viewer")
    other = writer.create_user("other", "hash", "viewer")
    key = writer.create_api_key(owner.id, "k", "cvp_11111111", "h" * 64)
    with pytest.raises(RecordNotFound):
        writer.revoke_api_key(other.id, key["id"])
    assert writer.revoke_api_key(owner.id, key["id"])["revoked_at"] is not None


def test_clock_is_injected(tmp_path: Path) -> None:
    fixed = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    clocked = StoreWriter(tmp_path / "c.db", clock=lambda: fixed)
    assert clocked.create_user("t", "h", "viewer").created_at == "2030-05-06T07:08:09.000+00:00"
    clocked.close()


def test_a_held_write_lock_becomes_store_unavailable(writer: StoreWriter) -> None:
    blocker = sqlite3.connect(writer.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="busy"):
            writer.create_user("late", "hash", "viewer")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    writer.check_writable()


def test_readers_are_read_only_and_see_commits(writer: StoreWriter) -> None:
    reader = open_reader(writer.db_path)
    writer.create_user("carol", "hash", "viewer")
    assert [user.username for user in queries.list_users(reader)] == ["carol"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM users")
    reader.conn.close()


def test_reader_without_database_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cvp up"):
        open_reader(tmp_path / "absent.db")


def test_artifacts_are_recorded_with_their_checksum(writer: StoreWriter, tmp_path: Path) -> None:
    from store.artifacts import write_artifact

    stored = write_artifact(tmp_path / "artifacts", "models/m1/model.onnx", [b"onnx bytes"])
    row = writer.record_artifact(stored.relative_path, stored.sha256, stored.size_bytes)
    saved = next(writer._db.query("SELECT * FROM artifacts WHERE id = ?", [row["id"]]))
    assert (saved["path"], saved["sha256"], saved["size_bytes"]) == (
        "models/m1/model.onnx",
        stored.sha256,
        10,
    )
    with pytest.raises(DuplicateRecord):
        writer.record_artifact(stored.relative_path, stored.sha256, stored.size_bytes)
