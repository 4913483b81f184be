"""Building the management API: one factory used by the server actor, the tests and the docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cvplatform import __version__
from cvplatform.scrub import platform_scrubber
from serve_apps.api.errors import install_error_handlers
from serve_apps.api.guard import guarded_routes
from serve_apps.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serve_apps.api.routes import (
    api_keys,
    auth,
    benchmarks,
    datasets,
    docs,
    health,
    inference,
    jobs,
    models,
    optimizations,
    passwords,
    reports,
    system,
    uploads,
    users,
)
from serve_apps.api.state import PlatformState

ROUTERS = (
    health.router,
    auth.router,
    api_keys.router,
    passwords.router,
    users.router,
    models.router,
    datasets.router,
    uploads.router,
    jobs.router,
    optimizations.router,
    benchmarks.router,
    reports.router,
    inference.router,
    system.router,
    docs.router,
)

_DESCRIPTION = """\
Manage users, models, datasets, training, benchmarks, reports and packages of a cv-platform node.

Authenticate with `Authorization: Bearer <token>` (from `POST /api/v1/auth/login`) or with
`X-API-Key: <key>`. Each operation's `x-roles` lists the roles allowed to call it. Errors are
`{"error": {"code", "message", "request_id"}}`.
"""


def create_app(state: PlatformState) -> FastAPI:
    app = FastAPI(
        title="cv-platform management API",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # The audit trail's writer runs while the server does (uvicorn runs the lifespan).
        lifespan=lambda _app: state.audit.running(),
    )
    app.state.platform = state
    for router in ROUTERS:
        app.include_router(router)
    app.mount(docs.ASSETS_URL, docs.docs_assets(), name="docs-assets")
    install_error_handlers(app, platform_scrubber(state.settings))
    settings = state.settings
    # Room for the form's small fields around the file, whose own limit the upload enforces.
    upload_limits = {
        models.UPLOAD_PATH: settings.max_model_bytes + settings.max_request_bytes,
        datasets.UPLOAD_PATH: settings.max_dataset_bytes
        + datasets.MAX_METADATA_BYTES
        + settings.max_request_bytes,
    }
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_request_bytes,
        limits_by_path=upload_limits,
        # A PATCH of a resumable upload; its route holds it to the upload's declared length.
        limits_by_prefix={f"{uploads.UPLOADS_PATH}/": uploads.largest_upload(settings)},
    )
    app.add_middleware(uploads.TusResumableHeader)  # outside the body limit: its 413 too
    app.add_middleware(RequestContextMiddleware)  # outermost: added last
    app.openapi = lambda: _openapi_document(app)  # type: ignore[method-assign]
    guarded_routes(app)  # refuses to build if any route bypasses the guard
    return app


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        document.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = document
    return app.openapi_schema
