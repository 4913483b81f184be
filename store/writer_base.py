"""The writer's foundation: SQLite errors translated, one transaction per operation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from cvplatform.clock import Clock, to_iso, utc_now
from cvplatform.errors import Conflict, DuplicateRecord, StoreUnavailable
from store.connections import open_writer
from store.schema import migrate


@contextmanager
def sqlite_errors_translated() -> Iterator[None]:
    """SQLite's exceptions become the platform's, with messages a user can act on."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        if "UNIQUE" in str(error):
            raise DuplicateRecord(f"already exists: {error}") from error
        raise Conflict(f"refused by the database: {error}") from error
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise StoreUnavailable(
                "the database is busy (another process holds its write lock); try again"
            ) from error
        raise StoreUnavailable(f"the database failed: {error}") from error
    except sqlite3.DatabaseError as error:  # a damaged file, a full disk, an I/O error
        raise StoreUnavailable(f"the database failed: {error}") from error


class WriterBase:
    """The connection, the clock and the transaction every write operation runs in.

    Args:
        db_path: the SQLite file; created and migrated to the latest schema if needed.
        busy_timeout_s: how long a write waits for SQLite's lock before StoreUnavailable.
        clock: stamps ``created_at`` and friends.
    """

    def __init__(self, db_path: Path, busy_timeout_s: float = 5.0, clock: Clock = utc_now) -> None:
        self.db_path = db_path
        self._clock = clock
        self._db = open_writer(db_path, busy_timeout_s)
        with sqlite_errors_translated():
            migrate(self._db)

    def close(self) -> None:
        self._db.conn.close()

    def _now(self) -> str:
        return to_iso(self._clock())

    @contextmanager
    def _transaction(self) -> Iterator[sqlite_utils.Database]:
        conn = self._db.conn
        with sqlite_errors_translated():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                conn.execute("COMMIT")
            finally:
                # SQLite may have rolled back on its own (I/O error, full disk); a failed COMMIT
                # leaves the transaction open. Either way the connection must be usable after.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
