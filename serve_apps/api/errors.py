"""Every failure leaves the API as ``{"error": {"code", "message", "request_id"}}``, its message
without the server's paths (``cvplatform.scrub``): the log keeps them."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cvplatform.errors import CvpError
from cvplatform.jsonlog import request_id_var

log = logging.getLogger("cvp.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_var.get()}
    if fields is not None:
        detail["fields"] = fields
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _scrubbed(request: Request, message: str) -> str:
    scrub: Callable[[str], str] = request.app.state.scrub_message
    return scrub(message)


async def _platform_error(request: Request, raised: Exception) -> JSONResponse:
    error = cast(CvpError, raised)  # Starlette calls each handler for its own exception type
    if error.status >= 500:
        log.warning("request failed: %s", error.message, extra={"code": error.code})
    message = _scrubbed(request, error.message)
    return error_response(error.status, error.code, message, headers=error.headers() or None)


async def _http_error(request: Request, raised: Exception) -> JSONResponse:
    error = cast(HTTPException, raised)
    code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    message = _scrubbed(request, str(error.detail))
    if error.status_code == 404:
        message = f"no route {request.method} {request.url.path}; see /docs for the API"
    headers = dict(error.headers) if error.headers else None
    return error_response(error.status_code, code, message, headers=headers)


async def _validation_error(request: Request, raised: Exception) -> JSONResponse:
    error = cast(RequestValidationError, raised)
    fields = [
        {
            "location": ".".join(str(part) for part in issue.get("loc", ())),
            "message": issue.get("msg", ""),
            "type": issue.get("type", ""),
        }
        for issue in jsonable_encoder(error.errors())
    ]
    if any(field["type"] == "json_invalid" for field in fields):
        return error_response(422, "malformed_json", "the request body is not valid JSON", fields)
    summary = "; ".join(f"{field['location']}: {field['message']}" for field in fields)
    return error_response(422, "validation_error", f"invalid request: {summary}", fields)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    # A read failed (writes are translated by the store actor): the same 503 as a failed write.
    log.error("database read failed: %s", error)
    message = _scrubbed(request, f"the database could not be read: {error}")
    return error_response(503, "store_unavailable", message)


def install_error_handlers(app: FastAPI, scrub_message: Callable[[str], str]) -> None:
    """Answer every platform, HTTP, validation and database error in the one error shape.

    Args:
        scrub_message: takes the server's paths out of a message (``platform_scrubber``).
    """
    app.state.scrub_message = scrub_message
    app.add_exception_handler(CvpError, _platform_error)
    app.add_exception_handler(sqlite3.Error, _database_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
