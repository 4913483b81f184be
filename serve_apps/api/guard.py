"""Every route declares the one action it performs; the guard checks it before any work.

Routes are declared with ``**requires(Action.X)``; :class:`GuardedRoute` refuses a route without
one, authenticates the caller (401), asks the RBAC policy (403), and only then lets FastAPI read
the body and run the handler. State-changing requests and every denial go to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cvplatform.errors import CvpError, PermissionDenied
from cvplatform.jsonlog import user_id_var
from cvplatform.schemas import Principal
from serve_apps.api.authn import authenticate
from serve_apps.api.state import platform
from serve_apps.auth.policy import PERMISSIONS, Action, can, needs_credentials

log = logging.getLogger("cvp.api")
ACTION_KEY = "x-action"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
                await _audit(request, route_name, _status_of(error))
                raise
            await _audit(request, route_name, response.status_code)
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


async def _audit(request: Request, route_name: str, status: int) -> None:
    """Record state changes and denials; a failing audit write never changes the answer."""
    if request.method in _READ_METHODS and status not in (401, 403):
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    try:
        await asyncio.wait_for(_append_audit(request, route_name, status, principal), 10.0)
    except Exception as error:
        log.error("audit write failed: %s", error, extra={"route": route_name, "status": status})


async def _append_audit(
    request: Request, route_name: str, status: int, principal: Principal | None
) -> None:
    await platform(request).ops.append_audit(
        action=route_name,
        resource=f"{request.method} {request.url.path}",
        result=status,
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else getattr(request.state, "actor", None),
        request_id=getattr(request.state, "request_id", None),
        detail=getattr(request.state, "audit_detail", None),
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
