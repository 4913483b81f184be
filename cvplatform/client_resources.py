"""The SDK's calls for models, datasets and jobs (mixed into :class:`cvplatform.client.Client`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from cvplatform.client_uploads import ResumableUpload, UploadOptions
from cvplatform.schemas import (
    AlertOut,
    DatasetAccepted,
    DatasetOut,
    DatasetPage,
    JobOut,
    JobPage,
    ModelAccepted,
    ModelOut,
    ModelPage,
    PreprocessingOut,
    PreprocessRequest,
    TaskType,
)


class ResourceCalls:
    # These come from Client, which mixes these calls in.
    _http: httpx.Client
    _request: Callable[..., Any]
    _upload_options: UploadOptions

    def upload_file(
        self, path: str | Path, kind: str, filename: str | None = None, progress: bool | None = None
    ) -> str:
        """Send a file as a resumable upload, resuming after dropped connections.

        Args:
            path: the file, streamed from disk.
            kind: what it will become: ``model``, ``dataset`` or ``dataset_metadata``.
            filename: the name to send (default: the file's own).
            progress: show a progress bar on stderr (default: when stderr is a terminal).

        Returns:
            The finished upload's id: give it as ``upload_id`` to create a model or dataset.
        """
        source = Path(path)
        upload = ResumableUpload(
            self._http, source, kind, filename or source.name, self._upload_options, progress
        )
        return upload.send()

    # --- models -----------------------------------------------------------------------------

    def upload_model(
        self,
        path: str | Path,
        name: str,
        task_type: TaskType,
        filename: str | None = None,
        progress: bool | None = None,
        **fields: str | int | list[int] | list[str] | None,
    ) -> ModelAccepted:
        """Upload a model file; conversion to ONNX then runs in the background.

        The file goes as a resumable upload (see :meth:`upload_file`): a dropped connection
        resumes where the server stopped, not from the start.

        Args:
            path: the file (.onnx, .pt, .pth, .h5, .pb, or a zipped SavedModel).
            name: a name to list it by.
            task_type: ``classification`` or ``detection``.
            filename: the name to send (default: the file's own).
            progress: show a progress bar on stderr (default: when stderr is a terminal).
            fields: ``description``, ``architecture`` (for a state dict), ``num_classes``,
                ``input_shape`` (e.g. ``[3, 224, 224]``), ``input_names`` / ``output_names``
                (for a frozen graph).
        """
        upload_id = self.upload_file(path, "model", filename, progress)
        body: dict[str, Any] = {"upload_id": upload_id, "name": name, "task_type": task_type}
        body.update((key, value) for key, value in fields.items() if value is not None)
        return ModelAccepted.model_validate(self._request("POST", "/api/v1/models", json=body))

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
        progress: bool | None = None,
    ) -> DatasetAccepted:
        """Upload a dataset: a ZIP (with an optional metadata CSV), or a CSV alone naming files
        under the platform's import directory. Validation then runs in the background.

        Each file goes as a resumable upload (see :meth:`upload_file`)."""
        body: dict[str, Any] = {"name": name, "task_type": task_type, "description": description}
        body["upload_id"] = self.upload_file(path, "dataset", filename, progress)
        if metadata is not None:
            body["metadata_upload_id"] = self.upload_file(
                metadata, "dataset_metadata", progress=progress
            )
        answer = self._request("POST", "/api/v1/datasets", json=body)
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

    def preprocess(
        self, dataset_id: str, config: PreprocessRequest | None = None, **fields: Any
    ) -> PreprocessingOut:
        """Start preprocessing, or reuse the cached result of the same content and config.

        Args:
            dataset_id: a ``ready`` dataset.
            config: the settings, checked here; or give them as ``fields`` (``image_size``,
                ``mean``, ``std``, ``frame_rate``, ``split``, ``seed``, ``augmentation``,
                ``model_id``), checked by the server.

        Returns:
            The preprocessing run (``cache_hit`` tells whether it was reused).
        """
        body = config.model_dump(mode="json", exclude_unset=True) if config else fields
        answer = self._request("POST", f"/api/v1/datasets/{dataset_id}/preprocess", json=body)
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

    # --- training and jobs ---------------------------------------------------------------

    def start_training(self, model_id: str, dataset_id: str, **hyperparameters: Any) -> JobOut:
        """Queue a training; ``hyperparameters`` as in :class:`cvplatform.schemas.Hyperparameters`.

        Raises:
            QueueFull: the GPU queue is at its bound (HTTP 429).
        """
        body = {"model_id": model_id, "dataset_id": dataset_id, "hyperparameters": hyperparameters}
        return JobOut.model_validate(self._request("POST", "/api/v1/trainings", json=body))

    def get_job(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._request("GET", f"/api/v1/jobs/{job_id}"))

    def list_jobs(
        self, status: str | None = None, limit: int = 50, offset: int = 0, **filters: str
    ) -> JobPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset, **filters}
        if status:
            params["status"] = status
        return JobPage.model_validate(self._request("GET", "/api/v1/jobs", params=params))

    def cancel_job(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._request("POST", f"/api/v1/jobs/{job_id}/cancel"))

    def wait_for_job(self, job_id: str, timeout_s: float = 600.0, poll_s: float = 0.5) -> JobOut:
        """Poll until the job ends (``completed``, ``failed`` or ``cancelled``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_job(job_id)
            if job.status in ("completed", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status}")
            time.sleep(poll_s)

    def job_events(
        self, job_id: str, timeout_s: float = 600.0
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's server-sent events as (kind, data), until its ``end`` event."""
        with self._http.stream(
            "GET", f"/api/v1/jobs/{job_id}/events", timeout=timeout_s
        ) as response:
            if response.is_error:
                response.read()
                raise _error(response)
            kind = "message"
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    yield kind, json.loads(line[len("data: ") :])
                    if kind == "end":
                        return

    def training_history(self, model_id: str, format: str = "json") -> Any:
        """Every training of a model; ``format="csv"`` gives the CSV text."""
        response = self._http.get(f"/api/v1/models/{model_id}/trainings", params={"format": format})
        if response.is_error:
            raise _error(response)
        return response.text if format == "csv" else response.json()

    def alerts(self, limit: int = 100) -> list[AlertOut]:
        return [
            AlertOut.model_validate(row)
            for row in self._request("GET", "/api/v1/alerts", params={"limit": limit})
        ]


def _error(response: httpx.Response) -> Exception:
    from cvplatform.client import error_from_response

    return error_from_response(response)
