"""When the audit log is purged, and which alert a failing audit write raises.

Pure: the time is passed in; :mod:`serve_apps.api.audit` acts on the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from cvplatform.clock import to_iso

ALERT_KIND = "audit_write_failed"


class PurgeSchedule:
    """Rows older than ``retention`` go, at most once per ``interval`` (and once at start)."""

    def __init__(self, retention: timedelta, interval: timedelta) -> None:
        self.retention = retention
        self.interval = interval
        self.last_run: datetime | None = None

    def cutoff_if_due(self, now: datetime) -> str | None:
        """The ISO time before which rows are purged, if a purge is due at ``now``; else None."""
        if self.last_run is not None and now - self.last_run < self.interval:
            return None
        return to_iso(now - self.retention)

    def ran(self, now: datetime) -> None:
        self.last_run = now


@dataclass(frozen=True)
class AuditAlert:
    """An alert for the ``alerts`` table (``raise_alert``'s arguments)."""

    severity: Literal["warning", "critical"]
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    kind: str = ALERT_KIND


class FailureStreak:
    """Failed audit writes in a row, and the alerts they call for.

    The first failure of a streak calls for a warning; a streak that lasts ``critical_after``
    calls for one critical alert. An alert is called for again until it is written (the store may
    refuse the alert too), and never twice in one streak.
    """

    def __init__(self, critical_after: timedelta) -> None:
        self.critical_after = critical_after
        self.started: datetime | None = None
        self._written: set[str] = set()

    def failed(self, now: datetime, waiting: int, error: str) -> AuditAlert | None:
        """A write failed at ``now`` with ``waiting`` rows unwritten: the alert to raise, if any."""
        if self.started is None:
            self.started = now
        lasted = now - self.started
        details = {"rows_waiting": waiting, "error": error, "since": to_iso(self.started)}
        if lasted >= self.critical_after and "critical" not in self._written:
            return AuditAlert(
                "critical",
                f"audit writes have failed for {int(lasted.total_seconds())} s; "
                f"{waiting} audit rows wait in the spool: {error}",
                details,
            )
        if "warning" not in self._written and "critical" not in self._written:
            return AuditAlert(
                "warning",
                f"an audit write failed; {waiting} audit rows wait in the spool and are "
                f"retried: {error}",
                details,
            )
        return None

    def alert_written(self, alert: AuditAlert) -> None:
        self._written.add(alert.severity)

    def succeeded(self) -> datetime | None:
        """A write succeeded: the streak ends; returns when it started (None: there was none)."""
        started, self.started = self.started, None
        self._written.clear()
        return started
