"""The single writer: every change to the database goes through one ``StoreWriter``.

Inside the platform it lives in the store actor, which runs its methods one at a time; that is
what makes check-then-write steps (the last admin) safe without more locking. Its operations are
grouped by concept (:mod:`store.account_writes`, :mod:`store.audit_writes`,
:mod:`store.model_writes`, :mod:`store.dataset_writes`, :mod:`store.job_writes`,
:mod:`store.report_writes`).
"""

from __future__ import annotations

from typing import ClassVar

from store.account_writes import AccountWrites
from store.audit_writes import AuditWrites
from store.dataset_writes import DatasetWrites
from store.job_writes import JobWrites
from store.model_writes import ModelWrites
from store.records import Row
from store.report_writes import ReportWrites
from store.writer_base import sqlite_errors_translated

__all__ = ["Row", "StoreWriter", "sqlite_errors_translated"]


class StoreWriter(AccountWrites, AuditWrites, ModelWrites, DatasetWrites, JobWrites, ReportWrites):
    """Every write operation of the platform, each one transaction."""

    # What the store actor lets a caller invoke by name.
    OPERATIONS: ClassVar[frozenset[str]] = (
        AccountWrites.OPERATIONS
        | AuditWrites.OPERATIONS
        | ModelWrites.OPERATIONS
        | DatasetWrites.OPERATIONS
        | JobWrites.OPERATIONS
        | ReportWrites.OPERATIONS
        | frozenset({"record_artifact", "check_writable"})
    )

    # --- artifacts, health ----------------------------------------------------------------

    def record_artifact(self, path: str, sha256: str, size_bytes: int) -> Row:
        """Record a file that :func:`store.artifacts.write_artifact` has put in place."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO artifacts (path, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?)",
                [path, sha256, size_bytes, self._now()],
            )
        return {"id": cursor.lastrowid, "path": path, "sha256": sha256, "size_bytes": size_bytes}

    def check_writable(self, wait_s: float = 1.0) -> None:
        """Take SQLite's write lock and let it go: proves a write could happen now.

        Waits at most ``wait_s`` for the lock (a health check must answer quickly).
        """
        normal_wait_ms = self._db.execute("PRAGMA busy_timeout").fetchone()[0]
        self._db.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000):d}")
        try:
            with self._transaction():
                pass
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(normal_wait_ms):d}")
