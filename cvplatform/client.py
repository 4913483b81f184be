"""The Python SDK: the management API over HTTP, for notebooks, scripts, the TUI and the tests.

Example::

    from cvplatform.client import Client

    with Client.login("http://127.0.0.1:8080", "admin", password) as admin:
        admin.create_user("alice", "a long pass phrase", role="engineer")
        key = admin.create_api_key("notebook").key
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from cvplatform.client_benchmarks import BenchmarkCalls
from cvplatform.client_inference import InferenceCalls
from cvplatform.client_optimizations import OptimizationCalls
from cvplatform.client_resources import ResourceCalls
from cvplatform.client_uploads import UploadOptions
from cvplatform.errors import ERRORS_BY_CODE, CvpError
from cvplatform.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    AuditEntry,
    Liveness,
    Principal,
    Readiness,
    Role,
    TokenResponse,
    UserOut,
)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_SERVE_PORT = 8000


def error_from_response(response: httpx.Response) -> CvpError:
    """The platform exception an error response stands for, with its status and request id."""
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
        request_id = detail.get("request_id")
    except (ValueError, KeyError, TypeError):
        code, message, request_id = "http_error", response.text[:500], None
    error_class = ERRORS_BY_CODE.get(code, CvpError)
    error = error_class(message)
    error.http_status = response.status_code  # type: ignore[attr-defined]
    error.request_id = request_id  # type: ignore[attr-defined]
    error.error_code = code  # type: ignore[attr-defined]
    return error


class Client(ResourceCalls, BenchmarkCalls, InferenceCalls, OptimizationCalls):
    """A session with the management API.

    Args:
        base_url: the API's address, ``http://127.0.0.1:8080`` by default.
        token: a bearer token from :meth:`login`.
        api_key: an API key (``cvp_...``); used instead of a token when given.
        timeout_s: per-request timeout.
        verify: TLS verification (a CA bundle path, or False for a self-signed test setup).
        upload_options: how files are sent (chunk size, retries); see :class:`UploadOptions`.
        transport: an httpx transport to send requests through instead of the network's.
        serve_url: the prediction endpoint (Ray Serve's port); by default the API's host on
            port 8000 (``CVP_SERVE_PORT``'s default).
        serve_transport: like ``transport``, for the prediction endpoint.

    Raises (from every method):
        CvpError: the subclass named by the error's code (``PermissionDenied``,
            ``InvalidCredentials``, ``DuplicateRecord``...), with ``http_status`` and
            ``request_id`` attributes.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        verify: bool | str = True,
        upload_options: UploadOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        serve_url: str | None = None,
        serve_transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {}
        if api_key:
            headers["X-API-Key"] = api_key
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout_s,
            verify=verify,
            transport=transport,
        )
        self._upload_options = upload_options or UploadOptions()
        self._serve = httpx.Client(
            base_url=serve_url or str(httpx.URL(base_url).copy_with(port=DEFAULT_SERVE_PORT)),
            headers=headers,
            timeout=timeout_s,
            verify=verify,
            transport=serve_transport,
        )

    @classmethod
    def login(cls, base_url: str, username: str, password: str, **options: Any) -> Client:
        """Log in with a user name and password; the client carries the token from then on."""
        anonymous = cls(base_url, **options)
        try:
            answer = anonymous._request(
                "POST", "/api/v1/auth/login", json={"username": username, "password": password}
            )
        finally:
            anonymous.close()
        token = TokenResponse.model_validate(answer).access_token
        return cls(base_url, token=token, **options)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        self._raise_for(response)
        return None if response.status_code == 204 else response.json()

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.is_error:
            raise error_from_response(response)

    # --- health and identity --------------------------------------------------------------

    def health(self) -> Liveness:
        return Liveness.model_validate(self._request("GET", "/api/v1/health"))

    def readiness(self) -> Readiness:
        """The readiness report; a 503 (not ready) is returned as a report, not raised."""
        response = self._http.get("/api/v1/health/ready")
        if response.status_code not in (200, 503):
            raise error_from_response(response)
        return Readiness.model_validate(response.json())

    def me(self) -> Principal:
        return Principal.model_validate(self._request("GET", "/api/v1/auth/me"))

    def logout(self) -> None:
        self._request("POST", "/api/v1/auth/logout")

    def change_password(self, old_password: str, new_password: str) -> TokenResponse:
        """Change one's own password; every login session of the user ends.

        A client that logged in carries the fresh token of the answer from then on; one with an
        API key keeps its key (keys stay valid).

        Raises:
            WrongPassword: ``old_password`` is not the current password.
            InvalidInput: ``new_password`` is too short or too long.
        """
        body = {"old_password": old_password, "new_password": new_password}
        issued = TokenResponse.model_validate(
            self._request("POST", "/api/v1/auth/password", json=body)
        )
        if "Authorization" in self._http.headers:
            self._http.headers["Authorization"] = f"Bearer {issued.access_token}"
        return issued

    # --- API keys -------------------------------------------------------------------------

    def create_api_key(self, name: str, expires_in_days: int | None = None) -> ApiKeyCreated:
        """Create an API key; ``.key`` is the full key, shown this once.

        Args:
            name: what the key is for, to recognize it in listings.
            expires_in_days: refuse the key this many days from now (None: never).
        """
        body: dict[str, Any] = {"name": name}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        answer = self._request("POST", "/api/v1/auth/api-keys", json=body)
        return ApiKeyCreated.model_validate(answer)

    def list_api_keys(self) -> list[ApiKeyOut]:
        return [
            ApiKeyOut.model_validate(row) for row in self._request("GET", "/api/v1/auth/api-keys")
        ]

    def revoke_api_key(self, key_id: int) -> ApiKeyOut:
        return ApiKeyOut.model_validate(self._request("DELETE", f"/api/v1/auth/api-keys/{key_id}"))

    # --- users (admin) --------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: Role) -> UserOut:
        body = {"username": username, "password": password, "role": role}
        return UserOut.model_validate(self._request("POST", "/api/v1/users", json=body))

    def list_users(self) -> list[UserOut]:
        return [UserOut.model_validate(row) for row in self._request("GET", "/api/v1/users")]

    def get_user(self, user_id: int) -> UserOut:
        return UserOut.model_validate(self._request("GET", f"/api/v1/users/{user_id}"))

    def set_role(self, user_id: int, role: Role) -> UserOut:
        answer = self._request("PATCH", f"/api/v1/users/{user_id}", json={"role": role})
        return UserOut.model_validate(answer)

    def delete_user(self, user_id: int) -> None:
        self._request("DELETE", f"/api/v1/users/{user_id}")

    def reset_password(self, user_id: int, password: str) -> None:
        """Set a user's password (admins); every login session of that user ends, keys stay."""
        self._request("PUT", f"/api/v1/users/{user_id}/password", json={"password": password})

    # --- system -----------------------------------------------------------------------------

    def audit_log(
        self, limit: int = 100, offset: int = 0, user_id: int | None = None
    ) -> list[AuditEntry]:
        params: dict[str, int] = {"limit": limit, "offset": offset}
        if user_id is not None:
            params["user_id"] = user_id
        rows = self._request("GET", "/api/v1/audit", params=params)
        return [AuditEntry.model_validate(row) for row in rows]

    def config(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", "/api/v1/config")
        return answer

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._serve.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
