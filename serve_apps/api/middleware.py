"""HTTP middleware: the request context and the body limit.

The request context puts a request id on every request, in its response and in every log line,
writes one JSON log line per request, and answers a JSON 500 for anything that escaped.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cvplatform.jsonlog import request_id_var, user_id_var
from serve_apps.api.errors import error_response

log = logging.getLogger("cvp.api")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def pick_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return str(candidate)
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, answer_request_id: bool = True) -> None:
        self.app = app
        # Behind Ray Serve's proxy, which passes its request id in and puts it on the answer
        # itself, a second header would repeat it.
        self.answer_request_id = answer_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = pick_request_id(scope)
        request_token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                if self.answer_request_id:
                    message.setdefault("headers", []).append(
                        (b"x-request-id", request_id.encode("latin-1"))
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("unhandled error")
            if not response_started:
                response = error_response(
                    500, "internal_error", f"internal error; quote request id {request_id}"
                )
                await response(scope, receive, send_with_request_id)
        finally:
            principal = scope["state"].get("principal")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": principal.user_id if principal else None,
                    "action": scope["state"].get("action"),
                },
            )
            request_id_var.reset(request_token)
            user_id_var.reset(user_token)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit: at once by Content-Length, else while they stream.

    The JSON API's limit is small; upload routes get theirs from ``limits_by_path`` (exact
    paths) or ``limits_by_prefix`` (paths under a prefix).
    """

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        limits_by_path: dict[str, int] | None = None,
        limits_by_prefix: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits_by_path = limits_by_path or {}
        self.limits_by_prefix = limits_by_prefix or {}

    def limit_of(self, path: str) -> int:
        if path in self.limits_by_path:
            return self.limits_by_path[path]
        for prefix, limit in self.limits_by_prefix.items():
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        too_large = f"the request body is larger than the limit of {limit} bytes"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(413, "payload_too_large", too_large)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes FastAPI's body parsing untouched, to our handler.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, receive_within_limit, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
