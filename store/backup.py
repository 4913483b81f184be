"""Backup and restore with SQLite's online backup API.

A backup reads through a read-only connection and works while the platform runs. A restore
rewrites the live database file in place, so it needs the platform stopped (the data directory's
lock free); the database it replaces is kept beside it first.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from cvplatform.clock import Clock, to_iso, utc_now
from cvplatform.errors import InvalidInput
from store.connections import open_reader, open_writer
from store.lock import DataDirLock
from store.schema import LATEST_VERSION


def backup_database(db_path: Path, destination: Path) -> Path:
    """Copy a consistent snapshot of the database to ``destination`` (a new file)."""
    if destination.exists():
        raise InvalidInput(f"{destination} exists already; name a new file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    # The backup holds password hashes: readable by its owner only, from its first byte.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    source = open_reader(db_path)
    try:
        target = sqlite3.connect(partial)
        try:
            source.conn.backup(target)
        finally:
            target.close()
        partial.rename(destination)
    finally:
        source.conn.close()
        partial.unlink(missing_ok=True)
    return destination


def check_backup(backup_path: Path) -> int:
    """Check that ``backup_path`` is a sound cv-platform database; returns its schema version."""
    if not backup_path.is_file():
        raise InvalidInput(f"no backup file at {backup_path}")
    try:
        conn = sqlite3.connect(f"{backup_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise InvalidInput(f"{backup_path} is not a SQLite database: {error}") from error
    if integrity != "ok":
        raise InvalidInput(f"{backup_path} fails SQLite's integrity check: {integrity}")
    if "users" not in tables or not 1 <= version <= LATEST_VERSION:
        raise InvalidInput(
            f"{backup_path} is not a cv-platform backup this release can restore "
            f"(schema version {version}, this release knows 1..{LATEST_VERSION})"
        )
    return version


@dataclass(frozen=True)
class Restored:
    """What a restore did.

    ``kept``: where the replaced database was kept (None: there was none).
    ``keys_kept_revoked``: API keys of the backup that stay revoked because they were revoked
    or deleted after it; None when there was no readable database to learn that from.
    """

    kept: Path | None
    keys_kept_revoked: int | None


# An API key is the same key in two databases when its prefix and its hash agree.
KeyIdentity = tuple[str, str]


def revocations_to_carry(
    restored_keys: list[tuple[int, str, str, str | None]],
    current_keys: dict[KeyIdentity, str | None],
    now: str,
) -> list[tuple[str, int]]:
    """The ``(revoked_at, key id)`` a restored key must be given so that it stays refused.

    Args:
        restored_keys: ``(id, prefix, key_hash, revoked_at)`` of each key in the backup.
        current_keys: ``revoked_at`` of each key in the database being replaced.
        now: the time stamped on keys that are gone from it (deleted with their user).
    """
    carried = []
    for key_id, prefix, key_hash, revoked_at in restored_keys:
        if revoked_at is not None:
            continue
        identity = (prefix, key_hash)
        if identity not in current_keys:
            carried.append((now, key_id))
        elif current_keys[identity] is not None:
            carried.append((str(current_keys[identity]), key_id))
    return carried


def _current_keys(db_path: Path) -> dict[KeyIdentity, str | None] | None:
    """Every API key of the database about to be replaced, or None if it cannot tell."""
    if not db_path.exists():
        return None
    try:
        with closing(open_reader(db_path).conn) as conn:
            rows = conn.execute("SELECT prefix, key_hash, revoked_at FROM api_keys").fetchall()
    except sqlite3.DatabaseError:  # damaged, or not a cv-platform database after all
        return None
    return {(prefix, key_hash): revoked_at for prefix, key_hash, revoked_at in rows}


def _carry_revocations(
    target: sqlite_utils.Database, current_keys: dict[KeyIdentity, str | None], now: str
) -> int:
    restored_keys = target.execute(
        "SELECT id, prefix, key_hash, revoked_at FROM api_keys"
    ).fetchall()
    carried = revocations_to_carry(restored_keys, current_keys, now)
    target.conn.executemany("UPDATE api_keys SET revoked_at = ? WHERE id = ?", carried)
    return len(carried)


def restore_database(
    backup_path: Path, db_path: Path, busy_timeout_s: float = 5.0, clock: Clock = utc_now
) -> Restored:
    """Replace the database's content with the backup's, keeping the old one beside it.

    Every login session in the restored database is revoked: a token that was logged out after
    the backup was taken must not come back to life. An API key revoked after the backup, or
    deleted with its user, stays revoked (learnt from the database being replaced; keys created
    after the backup are not in it at all). Users and their passwords come back as they were.

    Raises:
        PlatformRunning: the platform is running on this data directory.
        InvalidInput: the backup is missing, damaged, or not a cv-platform database.
    """
    check_backup(backup_path)
    now = to_iso(clock())
    with DataDirLock(db_path.parent):
        kept = None
        current_keys = _current_keys(db_path)
        if db_path.exists():
            kept = db_path.with_name(f"{db_path.name}.before-restore-{clock():%Y%m%dT%H%M%S}")
            backup_database(db_path, kept)
        source = sqlite3.connect(f"{backup_path.resolve().as_uri()}?mode=ro", uri=True)
        target = open_writer(db_path, busy_timeout_s)
        try:
            source.backup(target.conn)
            target.execute("BEGIN IMMEDIATE")  # the sessions and the keys are revoked together
            target.execute("UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL", [now])
            keys_kept_revoked = (
                None if current_keys is None else _carry_revocations(target, current_keys, now)
            )
            target.execute("COMMIT")
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            source.close()
            target.conn.close()
    return Restored(kept, keys_kept_revoked)
