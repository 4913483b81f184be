"""Opening the database: one writer connection (WAL, foreign keys on), any number of readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from cvplatform.errors import StoreUnavailable


def open_writer(db_path: Path, busy_timeout_s: float) -> sqlite_utils.Database:
    """The one connection allowed to write; creates the file and turns WAL on.

    Autocommit mode (``isolation_level=None``): each statement commits on its own unless it runs
    inside :func:`store.writer.transaction`, which issues ``BEGIN IMMEDIATE`` itself.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=busy_timeout_s, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL keeps WAL durable across application crashes; only a power loss can drop the last
    # commits, which is the trade SQLite documents for WAL.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


def open_reader(db_path: Path, busy_timeout_s: float = 5.0) -> sqlite_utils.Database:
    """A read-only connection; it sees every write the store actor has committed.

    Raises:
        StoreUnavailable: the database file does not exist (the platform never started here).
    """
    if not db_path.exists():
        raise StoreUnavailable(f"no database at {db_path}: start the platform with `cvp up` first")
    conn = sqlite3.connect(
        f"{db_path.resolve().as_uri()}?mode=ro",
        uri=True,
        timeout=busy_timeout_s,
        # The guard and a route's dependency open it, and a sync handler may use it from
        # FastAPI's thread pool; each connection still serves one request at a time.
        check_same_thread=False,
    )
    return sqlite_utils.Database(conn)
