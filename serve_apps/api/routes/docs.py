"""The OpenAPI document and interactive docs, rendered with assets served from this process
(fastapi-offline ships Swagger UI), so they work on a machine with no internet."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.auth.policy import Action

OPENAPI_URL = "/api/v1/openapi.json"
ASSETS_URL = "/api/v1/docs-assets"

router = APIRouter(route_class=GuardedRoute, tags=["docs"])


def docs_assets() -> StaticFiles:
    return StaticFiles(directory=str(resources.files("fastapi_offline") / "static"))


@router.get(OPENAPI_URL, include_in_schema=False, **requires(Action.PUBLIC))
async def openapi_document(request: Request) -> dict[str, Any]:
    document: dict[str, Any] = request.app.openapi()
    return document


@router.get("/docs", include_in_schema=False, **requires(Action.PUBLIC))
async def interactive_docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="cv-platform API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
    )
