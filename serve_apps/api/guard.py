"""Every route declares the one action it performs; the guard checks it before any work.

Routes are declared with ``**requires(Action.X)``; :class:`GuardedRoute` refuses a route without
one, authenticates the caller (401), asks the RBAC policy (403), and only then lets FastAPI read
the body and run the handler. Changes, reads of records and every denial go to the audit trail
(:func:`serve_apps.api.audit_rows.is_audited` says which), before the response is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cvplatform.clock import to_iso
from cvplatform.errors import CvpError, PermissionDenied
from cvplatform.jsonlog import user_id_var
from cvplatform.schemas import Principal
from serve_apps.api.audit_rows import AuditRow, is_aggregated, is_audited
from serve_apps.api.authn import authenticate
from serve_apps.api.state import platform
from serve_apps.auth.policy import PERMISSIONS, Action, can, needs_credentials

log = logging.getLogger("cvp.api")
ACTION_KEY = "x-action"


def requires(action: Action, **openapi: Any) -> dict[str, Any]:
    """Route decorator arguments that declare ``action`` (also shown in the OpenAPI document).

    ``openapi`` adds to the operation's OpenAPI entry (a multipart request body, say).
    """
    extra = {ACTION_KEY: action.value, "x-roles": sorted(PERMISSIONS[action]), **openapi}
    return {"openapi_extra": extra}


def principal_of(request: Request) -> Principal:
    """The authenticated caller (set by the guard before the handler runs)."""
    principal: Principal = request.state.principal
    return principal


class GuardedRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        declared = (kwargs.get("openapi_extra") or {}).get(ACTION_KEY)
        if declared is None:
            raise TypeError(f"route {path} declares no action: add **requires(Action...)")
        # Set before APIRoute.__init__, which builds the handler.
        self.action = Action(declared)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action, route_name = self.action, self.name

        async def guarded_handler(request: Request) -> Response:
            request.state.action = action.value
            try:
                if needs_credentials(action):
                    await _authorize(request, action)
                response = await handler(request)
            except Exception as error:
                _audit(request, action, route_name, _status_of(error))
                raise
            _audit(request, action, route_name, response.status_code)
            return response

        return guarded_handler


async def _authorize(request: Request, action: Action) -> None:
    principal = await authenticate(request)
    request.state.principal = principal
    user_id_var.set(principal.user_id)
    if not can(principal.role, action):
        allowed = ", ".join(sorted(PERMISSIONS[action]))
        raise PermissionDenied(
            f"role {principal.role!r} may not perform {action.value!r} (allowed: {allowed})"
        )


def _status_of(error: Exception) -> int:
    if isinstance(error, CvpError):
        return error.status
    if isinstance(error, HTTPException):
        return error.status_code
    return 422 if isinstance(error, RequestValidationError) else 500


def _audit(request: Request, action: Action, route_name: str, status: int) -> None:
    """Record the request if it is audited; a failing audit record never changes the answer."""
    if not is_audited(action, request.method, status):
        return
    try:
        platform(request).audit.record(_audit_row(request, action, route_name, status))
    except Exception as error:
        log.error("audit record failed: %s", error, extra={"route": route_name, "status": status})


def _audit_row(request: Request, action: Action, route_name: str, status: int) -> AuditRow:
    principal: Principal | None = getattr(request.state, "principal", None)
    return AuditRow(
        at=to_iso(platform(request).clock()),
        action=route_name,
        resource=f"{request.method} {request.url.path}",
        result=status,
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else getattr(request.state, "actor", None),
        request_id=getattr(request.state, "request_id", None),
        detail=getattr(request.state, "audit_detail", None),
        address=request.client.host if request.client else None,
        merge=is_aggregated(action, status),
    )


def guarded_routes(app: FastAPI) -> list[GuardedRoute]:
    """Every route of the app (the route table, included routers unrolled)."""
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            if not isinstance(route, GuardedRoute):
                raise TypeError(f"route {route.path} bypasses the guard")
            routes.append(route)
    return routes
