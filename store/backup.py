"""Backup and restore with SQLite's online backup API.

A backup reads through a read-only connection and works while the platform runs. A restore
rewrites the live database file in place, so it needs the platform stopped (the data directory's
lock free); the database it replaces is kept beside it first.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

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


def restore_database(
    backup_path: Path, db_path: Path, busy_timeout_s: float = 5.0, clock: Clock = utc_now
) -> Path | None:
    """Replace the database's content with the backup's; returns where the old one was kept.

    Every login session in the restored database is revoked: a token that was logged out after
    the backup was taken must not come back to life. (API keys and users come back as they were
    in the backup; review them after a restore.)

    Raises:
        PlatformRunning: the platform is running on this data directory.
        InvalidInput: the backup is missing, damaged, or not a cv-platform database.
    """
    check_backup(backup_path)
    with DataDirLock(db_path.parent):
        kept = None
        if db_path.exists():
            kept = db_path.with_name(f"{db_path.name}.before-restore-{clock():%Y%m%dT%H%M%S}")
            backup_database(db_path, kept)
        source = sqlite3.connect(f"{backup_path.resolve().as_uri()}?mode=ro", uri=True)
        target = open_writer(db_path, busy_timeout_s)
        try:
            source.backup(target.conn)
            target.execute(
                "UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL", [to_iso(clock())]
            )
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            source.close()
            target.conn.close()
    return kept
