"""Liveness and readiness, for monitors and load balancers (no credentials)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cvplatform import __version__
from cvplatform.schemas import Liveness, Readiness
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.state import platform
from serve_apps.auth.policy import Action

router = APIRouter(route_class=GuardedRoute, tags=["health"])


@router.get("/api/v1/health", **requires(Action.PUBLIC))
async def liveness() -> Liveness:
    """The API process is up and answering."""
    return Liveness(version=__version__)


@router.get(
    "/api/v1/health/ready",
    responses={503: {"model": Readiness, "description": "a required component is down"}},
    **requires(Action.PUBLIC),
)
async def readiness(request: Request) -> JSONResponse:
    """Store reachable and writable, Ray up, Serve running; the GPU's state for information."""
    report = await platform(request).readiness()
    status = 200 if report.status == "ready" else 503
    return JSONResponse(report.model_dump(), status_code=status)
