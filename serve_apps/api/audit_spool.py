"""The audit spool: every recorded row as a JSON line in a local file until its batch is written.

A row reaches the spool before its response is sent, and leaves it when the store has committed
it (the file is then rewritten with the rows still waiting). An API process that dies with rows
unwritten leaves them here, and the next one reads them back (:meth:`AuditSpool.load`), so an
action is never answered as done without its audit row.

What it survives: the API process dying at any point. Lines are flushed to the operating system,
not fsynced one by one (that would cost a disk flush per request), so a power cut can lose the
rows of the last flush interval. A row written to the store just before the process died, but not
yet removed from the spool, is written again on replay: at least once, never lost.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TextIO

from serve_apps.api.audit_rows import AuditRow

log = logging.getLogger("cvp.api")


class AuditSpool:
    """Append-only JSON lines at ``path``, rewritten whole when batches are written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._appender: TextIO | None = None

    def load(self) -> list[AuditRow]:
        """The rows a previous process left, oldest first.

        A line that is not a row (the last one, cut short by a crash) is skipped with a warning.
        """
        if not self.path.exists():
            return []
        rows: list[AuditRow] = []
        with self.path.open(encoding="utf-8") as spool:
            for number, line in enumerate(spool, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(AuditRow.from_dict(json.loads(line)))
                except (ValueError, TypeError) as error:
                    log.warning("audit spool line %d skipped: %s", number, error)
        return rows

    def append(self, row: AuditRow) -> None:
        """Add one row (flushed to the operating system before this returns)."""
        if self._appender is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._appender = self.path.open("a", encoding="utf-8")
        self._appender.write(_line(row))
        self._appender.flush()

    def rewrite(self, waiting: list[AuditRow]) -> None:
        """Keep only ``waiting`` (the rows not yet written), replacing the file atomically."""
        self.close()
        if not waiting:
            self.path.unlink(missing_ok=True)
            return
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", encoding="utf-8") as spool:
            spool.writelines(_line(row) for row in waiting)
        partial.replace(self.path)

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None


def _line(row: AuditRow) -> str:
    return json.dumps(row.as_dict(), separators=(",", ":")) + "\n"
