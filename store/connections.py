"""Opening the database: one writer connection (WAL, foreign keys on), any number of readers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def reading(db_path: Path) -> Iterator[sqlite_utils.Database]:
    """A read-only connection for a few queries, closed when the block ends."""
    db = open_reader(db_path)
    try:
        yield db
    finally:
        db.conn.close()


class ReaderPool:
    """Read-only connections kept open for reuse by a long-lived process (the API server).

    Opening a connection costs a file open, the WAL index and a schema parse on first use; under
    a hundred concurrent requests that cost was paid per request. A borrowed connection serves
    one caller at a time; at most ``max_idle`` wait between uses, the rest are closed.
    """

    def __init__(self, db_path: Path, max_idle: int = 16) -> None:
        self._db_path = db_path
        self._max_idle = max_idle
        self._idle: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = open_reader(self._db_path)
        try:
            yield db
        finally:
            self._give_back(db)

    def _give_back(self, db: sqlite_utils.Database) -> None:
        if db.conn.in_transaction:  # never keep an old snapshot for the next borrower
            db.conn.rollback()
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(db)
                return
        db.conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.conn.close()
