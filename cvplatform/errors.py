"""The platform's exceptions: one base, a base per domain, small subclasses that name the condition.

Each carries the HTTP status and the stable ``code`` that the API puts in its error body
``{"error": {"code", "message", "request_id"}}``; the SDK maps the code back to the class.
"""

from __future__ import annotations

from typing import ClassVar


class CvpError(Exception):
    """Base of every error the platform reports to a user."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # Keep attributes set after construction when the error crosses a Ray process boundary.
        return (type(self), (self.message,), dict(self.__dict__))

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error's response."""
        return {}


class InvalidInput(CvpError):
    status = 422
    code = "invalid_input"


class NotFound(CvpError):
    status = 404
    code = "not_found"


class Conflict(CvpError):
    status = 409
    code = "conflict"


class ResourceInUse(Conflict):
    code = "in_use"


class QueueFull(CvpError):
    """The GPU job queue is at its bound; nothing was queued."""

    status = 429
    code = "queue_full"


class InsufficientStorage(CvpError):
    """Taking the upload would leave the data disk with less than its configured reserve."""

    status = 507
    code = "insufficient_storage"


class PayloadTooLarge(CvpError):
    status = 413
    code = "payload_too_large"


# --- predictions ----------------------------------------------------------------------------


class InferenceBusy(CvpError):
    """The inference pool cannot take the request now; the caller should retry after a while."""

    status = 503
    code = "inference_busy"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class InferenceQueueFull(InferenceBusy):
    """As many requests wait for a worker as the queue holds: refused at once."""

    code = "inference_queue_full"


class InferenceQueueTimeout(InferenceBusy):
    """The request waited for a worker longer than the queue timeout."""

    code = "inference_queue_timeout"


class InferencePoolUnavailable(CvpError):
    """The inference pool is not running where it was asked for."""

    status = 503
    code = "inference_pool_unavailable"


class InferenceFailed(CvpError):
    """The model failed to run on a request's input (the message says how)."""

    status = 500
    code = "inference_failed"


class InferenceTimeout(CvpError):
    """The model took longer than the inference timeout; its run was stopped."""

    status = 504
    code = "inference_timeout"


# --- models ---------------------------------------------------------------------------------


class InvalidModel(InvalidInput):
    """The file is not a model this platform can take, or it does not fit its task type."""

    code = "invalid_model"


class UnsafeModel(InvalidModel):
    """The upload's graph uses an operation that can reach the server (files, network, Python)."""

    code = "unsafe_model"


class MissingExtra(InvalidInput):
    """The upload needs an optional part of the platform that is not installed here."""

    code = "missing_extra"


class ConversionFailed(CvpError):
    """The model is sound but could not be converted to ONNX faithfully."""

    code = "conversion_failed"


# --- resumable uploads ----------------------------------------------------------------------


class MalformedHeader(InvalidInput):
    """A request header the resumable upload protocol needs is missing or not well formed."""

    status = 400
    code = "invalid_header"


class TusVersionUnsupported(CvpError):
    """The request does not say ``Tus-Resumable: 1.0.0``, the one protocol version spoken here."""

    status = 412
    code = "tus_version_unsupported"

    def headers(self) -> dict[str, str]:
        return {"Tus-Version": "1.0.0"}


class UnsupportedMediaType(CvpError):
    status = 415
    code = "unsupported_media_type"


class OffsetMismatch(Conflict):
    """A ``PATCH`` did not start where the upload stands; ``HEAD`` gives its offset."""

    code = "offset_mismatch"


class UploadBusy(Conflict):
    """Another request is writing to this upload right now."""

    code = "upload_busy"


class UploadStalled(CvpError):
    """No bytes arrived for a while in the middle of a ``PATCH``: what came is kept, and the
    upload is free for the client to resume."""

    status = 408
    code = "upload_stalled"


class UploadIncomplete(Conflict):
    """A model or dataset was asked for from an upload that has not received all its bytes."""

    code = "upload_incomplete"


# --- authentication and authorization -------------------------------------------------------


class AuthError(CvpError):
    """The caller could not be identified (401)."""

    status = 401
    code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="cv-platform"'}


class InvalidCredentials(AuthError):
    code = "invalid_credentials"


class TokenExpired(AuthError):
    code = "token_expired"


class TokenRevoked(AuthError):
    code = "token_revoked"


class ApiKeyExpired(AuthError):
    code = "api_key_expired"


class LoginLocked(AuthError):
    """Too many failed logins for this user name from this client address: that address waits.

    The name stays open to every other address (``serve_apps.auth.throttle``).
    """

    status = 429
    code = "login_locked"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class LoginThrottled(LoginLocked):
    """Too many login attempts from this client address, or to the whole API, in the last minute."""

    code = "login_throttled"


class PermissionDenied(CvpError):
    status = 403
    code = "forbidden"


class WrongPassword(PermissionDenied):
    """A password change whose old password is not the user's."""

    code = "wrong_password"


# --- the store ------------------------------------------------------------------------------


class StoreError(CvpError):
    """Base of errors raised by the store."""


class RecordNotFound(StoreError, NotFound):
    pass


class DuplicateRecord(StoreError, Conflict):
    code = "duplicate"


class LastAdminError(StoreError, Conflict):
    code = "last_admin"


class StoreUnavailable(StoreError):
    """The store actor is down or SQLite could not take the write in time; nothing was written."""

    status = 503
    code = "store_unavailable"


class PlatformRunning(StoreError, Conflict):
    code = "platform_running"


class PortInUse(Conflict):
    """A port the platform listens on is taken (checked before anything starts)."""

    code = "port_in_use"


# --- GA search ------------------------------------------------------------------------------


class GeneBoundsError(InvalidInput):
    """A GA request's gene bounds are not a narrowing of the default search space."""

    code = "invalid_gene_bounds"


def _all_subclasses(cls: type[CvpError]) -> list[type[CvpError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all_subclasses(child))]


# The SDK turns an error body's code back into its class. Where classes share a code (a store's
# RecordNotFound and the generic NotFound), the most general one is kept.
ERRORS_BY_CODE: dict[str, type[CvpError]] = {}
for _error_class in _all_subclasses(CvpError):
    ERRORS_BY_CODE.setdefault(_error_class.code, _error_class)
