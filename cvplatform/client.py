"""The Python SDK: the management API over HTTP, for notebooks, scripts, the TUI and the tests.

Example::

    from cvplatform.client import Client

    with Client.login("http://127.0.0.1:8080", "admin", password) as admin:
        admin.create_user("alice", "a long pass phrase", role="engineer")
        key = admin.create_api_key("notebook").key
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from cvplatform.errors import ERRORS_BY_CODE, CvpError
from cvplatform.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    AuditEntry,
    DatasetAccepted,
    DatasetOut,
    DatasetPage,
    Liveness,
    ModelAccepted,
    ModelOut,
    ModelPage,
    PreprocessingOut,
    Principal,
    Readiness,
    Role,
    TaskType,
    TokenResponse,
    UserOut,
)

DEFAULT_URL = "http://127.0.0.1:8080"


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


class Client:
    """A session with the management API.

    Args:
        base_url: the API's address, ``http://127.0.0.1:8080`` by default.
        token: a bearer token from :meth:`login`.
        api_key: an API key (``cvp_...``); used instead of a token when given.
        timeout_s: per-request timeout.
        verify: TLS verification (a CA bundle path, or False for a self-signed test setup).

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
    ) -> None:
        headers = {}
        if api_key:
            headers["X-API-Key"] = api_key
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, verify=verify
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
        if response.is_error:
            raise error_from_response(response)
        return None if response.status_code == 204 else response.json()

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

    # --- API keys -------------------------------------------------------------------------

    def create_api_key(self, name: str) -> ApiKeyCreated:
        """Create an API key; ``.key`` is the full key, shown this once."""
        answer = self._request("POST", "/api/v1/auth/api-keys", json={"name": name})
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

    # --- models -----------------------------------------------------------------------------

    def upload_model(
        self,
        path: str | Path,
        name: str,
        task_type: TaskType,
        filename: str | None = None,
        **fields: str | int | list[int] | list[str] | None,
    ) -> ModelAccepted:
        """Upload a model file (streamed); conversion to ONNX then runs in the background.

        Args:
            path: the file (.onnx, .pt, .pth, .h5, .pb, or a zipped SavedModel).
            name: a name to list it by.
            task_type: ``classification`` or ``detection``.
            filename: the name to send (default: the file's own).
            fields: ``description``, ``architecture`` (for a state dict), ``num_classes``,
                ``input_shape`` (e.g. ``[3, 224, 224]``), ``input_names`` / ``output_names``
                (for a frozen graph).
        """
        form = {"name": name, "task_type": task_type}
        for key, value in fields.items():
            if value is not None:
                form[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        source = Path(path)
        with source.open("rb") as stream:
            answer = self._request(
                "POST",
                "/api/v1/models",
                data=form,
                files={"file": (filename or source.name, stream)},
            )
        return ModelAccepted.model_validate(answer)

    def get_model(self, model_id: str) -> ModelOut:
        return ModelOut.model_validate(self._request("GET", f"/api/v1/models/{model_id}"))

    def list_models(
        self,
        task_type: TaskType | None = None,
        framework: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ModelPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        for key, value in (("task_type", task_type), ("framework", framework), ("status", status)):
            if value:
                params[key] = value
        return ModelPage.model_validate(self._request("GET", "/api/v1/models", params=params))

    def delete_model(self, model_id: str) -> None:
        self._request("DELETE", f"/api/v1/models/{model_id}")

    def wait_for_model(
        self, model_id: str, timeout_s: float = 300.0, poll_s: float = 0.5
    ) -> ModelOut:
        """Poll until the model's status is final (``ready``, ``invalid`` or ``failed``).

        Raises:
            TimeoutError: still converting after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            model = self.get_model(model_id)
            if model.status in ("ready", "invalid", "failed"):
                return model
            if time.monotonic() > deadline:
                raise TimeoutError(f"model {model_id} is still {model.status}")
            time.sleep(poll_s)

    # --- datasets ---------------------------------------------------------------------------

    def upload_dataset(
        self,
        path: str | Path,
        name: str,
        task_type: TaskType,
        metadata: str | Path | None = None,
        description: str = "",
        filename: str | None = None,
    ) -> DatasetAccepted:
        """Upload a dataset: a ZIP (with an optional metadata CSV), or a CSV alone naming files
        under the platform's import directory. Validation then runs in the background."""
        form = {"name": name, "task_type": task_type, "description": description}
        source = Path(path)
        with ExitStack() as stack:
            files = {"file": (filename or source.name, stack.enter_context(source.open("rb")))}
            if metadata is not None:
                table = Path(metadata)
                files["metadata"] = (table.name, stack.enter_context(table.open("rb")))
            answer = self._request("POST", "/api/v1/datasets", data=form, files=files)
        return DatasetAccepted.model_validate(answer)

    def get_dataset(self, dataset_id: str) -> DatasetOut:
        return DatasetOut.model_validate(self._request("GET", f"/api/v1/datasets/{dataset_id}"))

    def list_datasets(
        self,
        task_type: TaskType | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> DatasetPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        for key, value in (("task_type", task_type), ("status", status)):
            if value:
                params[key] = value
        return DatasetPage.model_validate(self._request("GET", "/api/v1/datasets", params=params))

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/api/v1/datasets/{dataset_id}")

    def wait_for_dataset(
        self, dataset_id: str, timeout_s: float = 300.0, poll_s: float = 0.5
    ) -> DatasetOut:
        """Poll until validation is over (``ready``, ``invalid`` or ``failed``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            dataset = self.get_dataset(dataset_id)
            if dataset.status in ("ready", "invalid", "failed"):
                return dataset
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} is still {dataset.status}")
            time.sleep(poll_s)

    def preprocess(self, dataset_id: str, **config: Any) -> PreprocessingOut:
        """Start preprocessing (or reuse the cache): ``image_size``, ``mean``, ``std``,
        ``frame_rate``, ``split``, ``seed``, ``augmentation``, or ``model_id``."""
        answer = self._request("POST", f"/api/v1/datasets/{dataset_id}/preprocess", json=config)
        return PreprocessingOut.model_validate(answer)

    def get_preprocessing(self, dataset_id: str, preprocessing_id: str) -> PreprocessingOut:
        path = f"/api/v1/datasets/{dataset_id}/preprocessings/{preprocessing_id}"
        return PreprocessingOut.model_validate(self._request("GET", path))

    def wait_for_preprocessing(
        self, dataset_id: str, preprocessing_id: str, timeout_s: float = 300.0
    ) -> PreprocessingOut:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.get_preprocessing(dataset_id, preprocessing_id)
            if run.status != "running":
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"preprocessing {preprocessing_id} is still running")
            time.sleep(0.5)

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

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
