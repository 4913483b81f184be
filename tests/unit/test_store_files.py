"""Artifacts, the data directory lock, backup and restore."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from cvplatform.errors import InvalidInput, PayloadTooLarge, PlatformRunning
from store import queries
from store.artifacts import sha256_of, write_artifact
from store.backup import backup_database, restore_database, revocations_to_carry
from store.connections import open_reader
from store.lock import DataDirLock
from store.writer import StoreWriter


def test_artifact_is_written_atomically_with_its_hash(tmp_path: Path) -> None:
    chunks = [b"abc", b"def" * 1000]
    stored = write_artifact(tmp_path, "models/1/model.onnx", chunks)
    target = tmp_path / "models/1/model.onnx"
    assert stored.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest() == sha256_of(target)
    assert stored.size_bytes == target.stat().st_size == 3003
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]
    with pytest.raises(FileExistsError):
        write_artifact(tmp_path, "models/1/model.onnx", [b"x"])


@pytest.mark.parametrize("path", ["../escape.bin", "/etc/passwd", "a/../../b", ""])
def test_artifact_paths_stay_inside(tmp_path: Path, path: str) -> None:
    root = tmp_path / "artifacts"
    with pytest.raises(InvalidInput):
        write_artifact(root, path, [b"x"])
    assert not (tmp_path / "escape.bin").exists()


def test_artifact_over_the_limit_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        write_artifact(tmp_path, "big.bin", [b"x" * 10, b"y" * 10], max_bytes=15)
    assert list(tmp_path.iterdir()) == []


def test_lock_excludes_a_second_writer(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        assert DataDirLock(tmp_path).is_held_elsewhere()
        with pytest.raises(PlatformRunning, match="cvp down"):
            DataDirLock(tmp_path).acquire()
    assert not DataDirLock(tmp_path).is_held_elsewhere()


def _database_with(tmp_path: Path, *names: str) -> Path:
    writer = StoreWriter(tmp_path / "data" / "cvp.db")
    for name in names:
        writer.create_user(name, "hash", "viewer")
    writer.close()
    return tmp_path / "data" / "cvp.db"


def test_backup_while_a_writer_is_open_then_restore(tmp_path: Path) -> None:
    db_path = _database_with(tmp_path, "kept")
    live_writer = StoreWriter(db_path)  # backup works while the platform writes
    backup = backup_database(db_path, tmp_path / "backup.db")
    live_writer.create_user("after-backup", "hash", "viewer")
    live_writer.close()

    kept = restore_database(backup, db_path).kept
    reader = open_reader(db_path)
    assert [user.username for user in queries.list_users(reader)] == ["kept"]
    reader.conn.close()
    assert kept is not None and kept.exists()  # the replaced database is kept beside it
    old = open_reader(kept)
    assert len(queries.list_users(old)) == 2
    old.conn.close()


def test_restore_revokes_every_login_session(tmp_path: Path) -> None:
    db_path = _database_with(tmp_path, "sam")
    writer = StoreWriter(db_path)
    sam = queries.user_credentials(writer._db, "sam")
    assert sam is not None
    writer.create_session("before-backup", sam["id"], "2999-01-01T00:00:00.000+00:00")
    writer.close()
    backup = backup_database(db_path, tmp_path / "sessions.db")
    restore_database(backup, db_path)
    reader = open_reader(db_path)
    session = queries.session_for_auth(reader, "before-backup")
    reader.conn.close()
    assert session is not None and session["revoked_at"] is not None


def test_revocations_to_carry_keeps_later_revocations_and_deletions() -> None:
    backed_up = [
        (1, "cvp_aaaaaaaa", "hash-a", None),  # untouched since: stays good
        (2, "cvp_bbbbbbbb", "hash-b", None),  # revoked since: at the time it was revoked
        (3, "cvp_cccccccc", "hash-c", None),  # deleted since (with its user): revoked now
        (4, "cvp_dddddddd", "hash-d", "2026-01-01T00:00:00.000+00:00"),  # revoked already
        (5, "cvp_eeeeeeee", "hash-e", None),  # its prefix now names another key: gone
    ]
    current = {
        ("cvp_aaaaaaaa", "hash-a"): None,
        ("cvp_bbbbbbbb", "hash-b"): "2026-02-02T00:00:00.000+00:00",
        ("cvp_dddddddd", "hash-d"): "2026-01-01T00:00:00.000+00:00",
        ("cvp_eeeeeeee", "another-hash"): None,
    }
    assert revocations_to_carry(backed_up, current, "NOW") == [
        ("2026-02-02T00:00:00.000+00:00", 2),
        ("NOW", 3),
        ("NOW", 5),
    ]


def test_restore_where_no_database_was_brings_keys_back_as_backed_up(tmp_path: Path) -> None:
    db_path = _database_with(tmp_path, "ann")
    writer = StoreWriter(db_path)
    ann = queries.user_credentials(writer._db, "ann")
    assert ann is not None
    writer.create_api_key(ann["id"], "k", "cvp_0123abcd", "hash")
    writer.close()
    backup = backup_database(db_path, tmp_path / "keys.db")
    for leftover in db_path.parent.glob("cvp.db*"):
        leftover.unlink()
    restored = restore_database(backup, db_path)
    assert (restored.kept, restored.keys_kept_revoked) == (None, None)
    reader = open_reader(db_path)
    key = queries.api_key_for_auth(reader, "cvp_0123abcd")
    reader.conn.close()
    assert key is not None and key["revoked_at"] is None


def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    db_path = _database_with(tmp_path)
    (tmp_path / "exists.db").write_text("x")
    with pytest.raises(InvalidInput, match="exists already"):
        backup_database(db_path, tmp_path / "exists.db")


def test_restore_refused_while_running(tmp_path: Path) -> None:
    db_path = _database_with(tmp_path, "a")
    backup = backup_database(db_path, tmp_path / "b.db")
    with DataDirLock(db_path.parent), pytest.raises(PlatformRunning):
        restore_database(backup, db_path)


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_restore_refuses_what_is_not_a_backup(tmp_path: Path, content: bytes) -> None:
    db_path = _database_with(tmp_path, "untouched")
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(content)
    with pytest.raises(InvalidInput):
        restore_database(bogus, db_path)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(InvalidInput, match="not a cv-platform backup"):
        restore_database(tmp_path / "other.db", db_path)
    reader = open_reader(db_path)
    assert [user.username for user in queries.list_users(reader)] == ["untouched"]
    reader.conn.close()
