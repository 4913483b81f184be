"""Which requests the audit log records, the rows it records, and the rows waiting to be written.

NFR4.4 asks for every create, read, update and delete in the log. Writing one row per request
through the single writer would put the audit log on every request's path, so the API process
keeps the rows in an :class:`AuditBuffer` (and in a spool file, see :mod:`audit_spool`) and writes
them as one store call per batch. A flood of failed logins from one address becomes one row per
minute with a ``count``, so it costs neither a write nor a row per request.
Pure: nothing here knows about HTTP, files, asyncio or Ray.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from serve_apps.auth.policy import Action

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reads of the platform's records (models, datasets, jobs, reports, configuration; users; the
# audit log and alerts) are audited. Not audited: liveness, readiness and the API documents
# (public), a caller reading their own identity and keys (self), an upload's progress (a HEAD
# of ``resources.upload``) and predictions, which the inference metrics count.
AUDITED_READS = frozenset({Action.RESOURCES_READ, Action.USERS_MANAGE, Action.SYSTEM_MONITOR})
_DENIALS = frozenset({401, 403})
# A wrong password or a throttled attempt at the one public route that can fail so (the login).
_AGGREGATED_RESULTS = frozenset({401, 429})


def is_audited(action: Action, method: str, status: int) -> bool:
    """Whether a request to a route declaring ``action`` gets an audit row.

    Every change (any method but GET, HEAD, OPTIONS), every denial (401, 403), and the reads of
    :data:`AUDITED_READS`, whatever their result.
    """
    if method not in _READ_METHODS or status in _DENIALS:
        return True
    return action in AUDITED_READS


def is_aggregated(action: Action, status: int) -> bool:
    """Whether the row joins the one row of its address, minute, action and result.

    Failed (401) and throttled (429) logins: whoever floods the login costs one row per minute.
    """
    return action is Action.PUBLIC and status in _AGGREGATED_RESULTS


@dataclass
class AuditRow:
    """One row of ``audit_log`` as the API records it (``at`` from the API's clock, ISO text).

    ``merge``: the row stands for ``count`` equal events and joins the row of the same
    :attr:`merge_key` (in the buffer, and in the store when that row is already written).
    """

    at: str
    action: str
    resource: str
    result: int
    user_id: int | None = None
    username: str | None = None
    request_id: str | None = None
    detail: str | None = None
    address: str | None = None
    count: int = 1
    merge: bool = False

    @property
    def merge_key(self) -> tuple[str | None, str, str, int] | None:
        """(address, minute, action, result) of a merged row; None for a row of its own."""
        if not self.merge:
            return None
        # Stored times are UTC ISO text: the first 16 characters are the minute.
        return (self.address, self.at[:16], self.action, self.result)

    def absorb(self, other: AuditRow) -> None:
        """Count ``other`` (an equal event of the same minute) in this row."""
        self.count += other.count
        if self.username != other.username:  # several names tried: the row names none
            self.username = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> AuditRow:
        """A row from :meth:`as_dict`'s output; unknown keys are ignored.

        Raises:
            ValueError, TypeError: ``values`` is not such an output.
        """
        if not isinstance(values, dict):
            raise TypeError(f"not an audit row: {values!r}")
        known = {field.name for field in fields(cls)}
        row = cls(**{name: value for name, value in values.items() if name in known})
        if not isinstance(row.at, str) or not isinstance(row.result, int) or row.count < 1:
            raise ValueError(f"not an audit row: {values!r}")
        return row


class AuditBuffer:
    """The rows recorded and not yet written, oldest first; merged rows joined by key.

    Not thread-safe: the API's event loop is its only user.
    """

    def __init__(self) -> None:
        self._rows: list[AuditRow] = []
        # The waiting row each merge key adds to; a row taken for a batch leaves this map, so an
        # event after that starts a new row (which the store adds to the written one).
        self._open: dict[tuple[str | None, str, str, int], AuditRow] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: AuditRow) -> None:
        key = row.merge_key
        if key is not None and key in self._open:
            self._open[key].absorb(row)
            return
        self._rows.append(row)
        if key is not None:
            self._open[key] = row

    def take(self, limit: int) -> list[AuditRow]:
        """The oldest ``limit`` rows, removed from the buffer (for one batch)."""
        batch, self._rows = self._rows[:limit], self._rows[limit:]
        for row in batch:
            key = row.merge_key
            if key is not None and self._open.get(key) is row:
                del self._open[key]
        return batch

    def put_back(self, batch: list[AuditRow]) -> None:
        """A batch the store did not write goes back in front, merged with what came since."""
        waiting = self._rows
        self._rows, self._open = [], {}
        for row in [*batch, *waiting]:
            self.add(row)

    def rows(self) -> list[AuditRow]:
        """The waiting rows, oldest first (a copy of the list; the rows themselves)."""
        return list(self._rows)
