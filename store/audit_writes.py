"""Writes for the audit log: one row (the CLI), a batch (the API), and the retention purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import sqlite_utils

from cvplatform.clock import from_iso, to_iso
from store.writer_base import WriterBase

_INSERT = (
    "INSERT INTO audit_log (at, request_id, user_id, username, action, resource, result, detail,"
    " count, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The newest row of one address, minute, action and result; ``at`` bounds use its index.
_MERGE = """
UPDATE audit_log SET count = count + ?,
    username = CASE WHEN username IS ? THEN username END
WHERE id = (
    SELECT id FROM audit_log
    WHERE at >= ? AND at < ? AND action = ? AND result = ? AND address IS ?
    ORDER BY id DESC LIMIT 1
)
"""


def _minute_bounds(at: str) -> tuple[str, str]:
    start = from_iso(at).replace(second=0, microsecond=0)
    return to_iso(start), to_iso(start + timedelta(minutes=1))


class AuditWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {"append_audit", "append_audit_batch", "purge_audit"}
    )

    def append_audit(
        self,
        action: str,
        resource: str,
        result: int,
        user_id: int | None = None,
        username: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> int:
        """One row, stamped now (an operator's ``cvp`` command)."""
        with self._transaction() as db:
            values = [self._now(), request_id, user_id, username, action, resource, result]
            cursor = db.execute(_INSERT, [*values, detail, 1, None])
        return int(cursor.lastrowid or 0)

    def append_audit_batch(self, rows: list[dict[str, Any]]) -> int:
        """The API's buffered rows, in one transaction; returns how many rows came.

        Each row has ``audit_log``'s columns but ``id`` (``at`` is the request's time) and
        ``merge``: a merged row (repeated failed logins) adds its ``count`` to the row of the same
        address, minute, action and result when one is written already, so that a flood spread
        over several batches is still one row per minute.
        """
        with self._transaction() as db:
            for row in rows:
                if row.get("merge") and self._merged(db, row):
                    continue
                db.execute(
                    _INSERT,
                    [
                        row["at"],
                        row.get("request_id"),
                        row.get("user_id"),
                        row.get("username"),
                        row["action"],
                        row["resource"],
                        row["result"],
                        row.get("detail"),
                        row.get("count", 1),
                        row.get("address"),
                    ],
                )
        return len(rows)

    @staticmethod
    def _merged(db: sqlite_utils.Database, row: dict[str, Any]) -> bool:
        start, end = _minute_bounds(row["at"])
        cursor = db.execute(
            _MERGE,
            [
                row.get("count", 1),
                row.get("username"),
                start,
                end,
                row["action"],
                row["result"],
                row.get("address"),
            ],
        )
        return cursor.rowcount > 0

    def purge_audit(self, before: str, limit: int = 10_000) -> int:
        """Delete up to ``limit`` rows older than ``before`` (ISO time); returns how many.

        Bounded so that a first purge of a long history does not hold the writer for long: the
        caller repeats while a call deletes ``limit`` rows.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM audit_log WHERE id IN"
                " (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
                [before, limit],
            )
        return int(cursor.rowcount)
