"""The audit log (admins) and the effective configuration (admins and engineers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from cvplatform.schemas import AlertOut, AuditEntry
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.params import LogLimit, Offset, UserFilter
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.policy import Action
from store import queries

router = APIRouter(route_class=GuardedRoute, tags=["system"])


@router.get("/api/v1/audit", **requires(Action.SYSTEM_MONITOR))
async def list_audit_entries(
    request: Request,
    db: ReadDb,
    limit: LogLimit = 100,
    offset: Offset = 0,
    user_id: UserFilter = None,
) -> list[AuditEntry]:
    """Newest first: every change, every read of a record, every denied request.

    Repeated failed or throttled logins from one address are one entry per minute, with their
    ``count``. Rows recorded before this request and not yet written are written first (if the
    store takes them now), so the answer includes them.
    """
    await platform(request).audit.flush()
    return [AuditEntry(**row) for row in queries.audit_entries(db, limit, offset, user_id)]


@router.get("/api/v1/alerts", **requires(Action.SYSTEM_MONITOR))
async def list_alerts(
    db: ReadDb,
    limit: LogLimit = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    """Newest first: a full GPU queue, and (later) inference queue, error rate, database alerts."""
    return [AlertOut(**row) for row in queries.list_alerts(db, limit, offset)]


@router.get("/api/v1/config", **requires(Action.RESOURCES_READ))
async def effective_config(request: Request) -> dict[str, Any]:
    """The configuration the platform runs with, secrets masked (as ``cvp config`` prints)."""
    return platform(request).settings.public_view()
