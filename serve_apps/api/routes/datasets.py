"""Datasets: upload (streamed; validated in the background), list, show, delete, preprocess."""

from __future__ import annotations

import shutil
import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from actors.datasets.preprocess import cache_key
from actors.datasets.storage import METADATA_TABLE, UPLOAD_ARCHIVE, UPLOAD_TABLE
from cvplatform.config import Settings
from cvplatform.errors import Conflict, InvalidInput, RecordNotFound
from cvplatform.schemas import (
    DatasetAccepted,
    DatasetOut,
    DatasetPage,
    DatasetStatus,
    ErrorBody,
    PreprocessConfig,
    PreprocessingOut,
    PreprocessRequest,
    TaskType,
    UploadId,
    UploadKind,
    WireModel,
)
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.params import Limit, Offset
from serve_apps.api.state import PlatformState, ReadDb, platform
from serve_apps.api.uploads import (
    FileField,
    ReceivedForm,
    read_json_body,
    receive_upload,
    sends_json,
    take_finished,
)
from serve_apps.auth.policy import Action
from store import queries
from store.artifacts import resolve_inside
from store.records import DatasetRecord, PreprocessingRecord, record_fields

router = APIRouter(route_class=GuardedRoute, tags=["datasets"])
UPLOAD_PATH = "/api/v1/datasets"
MAX_METADATA_BYTES = 256 * 1024 * 1024


class DatasetUploadFields(WireModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    task_type: TaskType


class DatasetFromUpload(DatasetUploadFields):
    """The JSON body that makes a dataset of finished resumable uploads (``/api/v1/uploads``)."""

    upload_id: UploadId
    metadata_upload_id: UploadId | None = None


def upload_file_fields(settings: Settings) -> dict[str, FileField]:
    """The files a dataset upload takes, multipart or resumable: size limits and name checks."""
    return {
        "file": FileField(settings.max_dataset_bytes, _dataset_file),
        "metadata": FileField(MAX_METADATA_BYTES, _metadata_file, required=False),
    }


def _dataset_file(filename: str) -> None:
    _plain_name(filename, (".zip", ".csv"))


def _metadata_file(filename: str) -> None:
    _plain_name(filename, (".csv",))


def _plain_name(filename: str, extensions: tuple[str, ...]) -> None:
    if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        raise InvalidInput(f"file name {filename!r} is a path; send the bare file name")
    if not filename.lower().endswith(extensions):
        raise InvalidInput(f"{filename!r}: send one of {', '.join(extensions)}")


_MULTIPART_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "name", "task_type"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "ZIP or CSV"},
                    "metadata": {"type": "string", "format": "binary", "description": "CSV"},
                    **DatasetUploadFields.model_json_schema()["properties"],
                },
            }
        },
        "application/json": {"schema": DatasetFromUpload.model_json_schema()},
    },
}


@router.post(
    UPLOAD_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        413: {"model": ErrorBody, "description": "a file, the parts or a part's headers too large"},
        422: {"model": ErrorBody},
        507: {"model": ErrorBody, "description": "the data disk would keep less than its reserve"},
    },
    **requires(Action.RESOURCES_UPLOAD, requestBody=_MULTIPART_BODY),
)
async def upload_dataset(request: Request) -> DatasetAccepted:
    """Upload a dataset (a ZIP, with an optional ``metadata`` CSV; or a CSV alone naming files
    under the import directory). Validation then runs in the background.

    Or make one of finished resumable uploads: ``application/json`` with ``upload_id`` (and
    ``metadata_upload_id``) and the same fields."""
    state = platform(request)
    settings = state.settings
    if sends_json(request):
        form = await _take_finished_uploads(state, request)
    else:
        form = await receive_upload(request, settings, upload_file_fields(settings))
    try:
        return await _accept(state, request, form)
    finally:
        form.discard()


async def _take_finished_uploads(state: PlatformState, request: Request) -> ReceivedForm:
    settings = state.settings
    body = await read_json_body(request, DatasetFromUpload, settings.max_request_bytes)
    wanted: dict[str, tuple[str, UploadKind]] = {"file": (body.upload_id, "dataset")}
    if body.metadata_upload_id is not None:
        wanted["metadata"] = (body.metadata_upload_id, "dataset_metadata")
    form = take_finished(state.uploads, principal_of(request), wanted, settings.staging_dir)
    fields = body.model_dump(exclude={"upload_id", "metadata_upload_id"}, exclude_none=True)
    form.fields = {name: str(value) for name, value in fields.items()}
    return form


async def _accept(state: PlatformState, request: Request, form: ReceivedForm) -> DatasetAccepted:
    try:
        fields = DatasetUploadFields.model_validate(
            {key: value for key, value in form.fields.items() if value != ""}
        )
    except ValidationError as error:
        issues = [{**issue, "loc": ("form", *issue["loc"])} for issue in error.errors()]
        raise RequestValidationError(issues) from error
    upload = form.files["file"]
    if upload.size_bytes == 0:
        raise InvalidInput("the file is empty")
    is_table = upload.filename.lower().endswith(".csv")
    if is_table and state.settings.import_dir is None:
        raise InvalidInput(
            "a CSV alone names files under the import directory, and none is configured "
            "(CVP_IMPORT_DIR); upload a ZIP instead"
        )
    dataset_id = uuid.uuid4().hex
    folder = resolve_inside(state.settings.artifacts_dir, f"datasets/{dataset_id}")
    folder.mkdir(parents=True)
    try:
        upload.path.rename(folder / (UPLOAD_TABLE if is_table else UPLOAD_ARCHIVE))
        if "metadata" in form.files:
            form.files["metadata"].path.rename(folder / METADATA_TABLE)
        await state.ops.create_dataset(
            dataset={
                "id": dataset_id,
                "name": fields.name,
                "description": fields.description,
                "task_type": fields.task_type,
                "source_filename": upload.filename,
                "source_sha256": upload.sha256,
                "source_size_bytes": upload.size_bytes,
                "files_path": f"datasets/{dataset_id}",
                "created_by": principal_of(request).user_id,
            },
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    request.state.audit_detail = f"dataset {dataset_id} ({upload.filename})"
    state.background.validate_dataset(dataset_id)
    return DatasetAccepted(id=dataset_id, status="uploaded", url=f"{UPLOAD_PATH}/{dataset_id}")


_STORED_FIELDS = set(DatasetOut.model_fields) & record_fields(DatasetRecord)


def dataset_out(dataset: DatasetRecord) -> DatasetOut:
    details = dataset.details
    return DatasetOut.model_validate(
        {
            **{name: getattr(dataset, name) for name in _STORED_FIELDS},
            "is_sample": dataset.sample is not None,
            "source": {
                "filename": dataset.source_filename,
                "sha256": dataset.source_sha256,
                "size_bytes": dataset.source_size_bytes,
            },
            "class_counts": details.get("class_counts"),
            "image_size_range": details.get("image_size_range"),
            "rejected": details.get("rejected", []),
            "rejected_count": details.get("rejected_count", 0),
        }
    )


@router.get(UPLOAD_PATH, **requires(Action.RESOURCES_READ))
async def list_datasets(
    db: ReadDb,
    task_type: TaskType | None = None,
    status: DatasetStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DatasetPage:
    filters = {"task_type": task_type, "status": status}
    page = queries.list_datasets(db, {k: v for k, v in filters.items() if v}, limit, offset)
    items = [dataset_out(dataset) for dataset in page.items]
    return DatasetPage(items=items, total=page.total, limit=limit, offset=offset)


def _dataset(db: Any, dataset_id: str) -> DatasetRecord:
    return queries.required(queries.dataset_by_id, db, dataset_id, "dataset")


@router.get(f"{UPLOAD_PATH}/{{dataset_id}}", **requires(Action.RESOURCES_READ))
async def get_dataset(dataset_id: str, db: ReadDb) -> DatasetOut:
    return dataset_out(_dataset(db, dataset_id))


@router.delete(
    f"{UPLOAD_PATH}/{{dataset_id}}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"model": ErrorBody, "description": "a sample, or in use"}},
    **requires(Action.RESOURCES_DELETE),
)
async def delete_dataset(dataset_id: str, request: Request) -> None:
    """Delete a dataset, its files and its preprocessing cache. Samples cannot be deleted."""
    state = platform(request)
    folders = await state.ops.delete_dataset(dataset_id=dataset_id)
    for relative_path in folders:
        shutil.rmtree(
            resolve_inside(state.settings.artifacts_dir, relative_path), ignore_errors=True
        )
    request.state.audit_detail = f"dataset {dataset_id}"


def preprocessing_out(run: PreprocessingRecord, cache_hit: bool) -> PreprocessingOut:
    stored = set(PreprocessingOut.model_fields) & record_fields(PreprocessingRecord)
    return PreprocessingOut.model_validate(
        {**{name: getattr(run, name) for name in stored}, "cache_hit": cache_hit}
    )


@router.post(
    f"{UPLOAD_PATH}/{{dataset_id}}/preprocess",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": PreprocessingOut, "description": "served from the cache"}},
    **requires(Action.JOBS_START),
)
async def preprocess_dataset(
    dataset_id: str, body: PreprocessRequest, request: Request, db: ReadDb
) -> JSONResponse:
    """Preprocess (decode, resize, split) on CPU Ray tasks, or reuse the cached result of the same
    dataset content and config (answer 200 with ``cache_hit: true``)."""
    state = platform(request)
    dataset = _dataset(db, dataset_id)
    if dataset.status != "ready" or dataset.content_hash is None:
        raise Conflict(f"dataset {dataset_id} is {dataset.status}; preprocess it once it is ready")
    config = PreprocessConfig(**body.model_dump(exclude={"model_id"}))
    if body.model_id:
        config = config.model_copy(update={"image_size": _model_image_size(db, body.model_id)})
    key = cache_key(dataset.content_hash, config)
    claim = await state.ops.start_preprocessing(
        preprocessing_id=uuid.uuid4().hex,
        dataset_id=dataset_id,
        cache_key=key,
        config=config.model_dump(mode="json"),
        output_path=f"preprocessed/{key}",
        created_by=principal_of(request).user_id,
    )
    if not claim.cache_hit:
        state.background.preprocess_dataset(claim.record.id)
    answer = preprocessing_out(claim.record, claim.cache_hit)
    return JSONResponse(answer.model_dump(), status_code=200 if claim.cache_hit else 202)


def _model_image_size(db: Any, model_id: str) -> tuple[int, int]:
    model = queries.required(queries.model_by_id, db, model_id, "model")
    inputs = model.details.get("summary", {}).get("inputs", [])
    shape = inputs[0]["shape"] if inputs else model.input_shape
    sizes = [size for size in (shape or [])[-3:] if isinstance(size, int)]
    if len(sizes) != 3:
        raise InvalidInput(f"model {model_id} has no static input size; give image_size")
    channels_first = sizes[0] in (1, 3)
    height, width = (sizes[1], sizes[2]) if channels_first else (sizes[0], sizes[1])
    return height, width


@router.get(f"{UPLOAD_PATH}/{{dataset_id}}/preprocessings", **requires(Action.RESOURCES_READ))
async def list_preprocessings(dataset_id: str, db: ReadDb) -> list[PreprocessingOut]:
    _dataset(db, dataset_id)
    return [preprocessing_out(run, False) for run in queries.preprocessings_of(db, dataset_id)]


@router.get(
    f"{UPLOAD_PATH}/{{dataset_id}}/preprocessings/{{preprocessing_id}}",
    **requires(Action.RESOURCES_READ),
)
async def get_preprocessing(dataset_id: str, preprocessing_id: str, db: ReadDb) -> PreprocessingOut:
    run = queries.preprocessing_by_id(db, preprocessing_id)
    if run is None or run.dataset_id != dataset_id:
        raise RecordNotFound(f"no preprocessing {preprocessing_id} of dataset {dataset_id}")
    return preprocessing_out(run, False)
