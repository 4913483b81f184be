"""Models: upload (streamed to disk, converted in the background), list, show, delete."""

from __future__ import annotations

import importlib.util
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from actors.models.formats import (
    TENSORFLOW_INSTALL,
    check_upload_filename,
    detect_source_format,
    framework_of,
)
from cvplatform.errors import MissingExtra
from cvplatform.schemas import (
    ErrorBody,
    Framework,
    ModelAccepted,
    ModelOut,
    ModelPage,
    ModelStatus,
    TaskType,
    WireModel,
)
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.state import PlatformState, ReadDb, platform
from serve_apps.api.uploads import FileField, ReceivedFile, receive_upload
from serve_apps.auth.policy import Action
from store import queries
from store.artifacts import resolve_inside
from store.records import ModelRecord, record_fields

router = APIRouter(route_class=GuardedRoute, tags=["models"])
log = logging.getLogger("cvp.api")
UPLOAD_PATH = "/api/v1/models"


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()] or None
    return value


class ModelUploadFields(WireModel):
    """The form fields that travel with the file."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    task_type: TaskType
    architecture: str | None = Field(None, max_length=200)
    num_classes: int | None = Field(None, ge=1, le=100_000)
    input_shape: list[Annotated[int, Field(ge=1, le=16384)]] | None = Field(None, max_length=4)
    input_names: list[str] | None = None
    output_names: list[str] | None = None

    _lists = field_validator("input_shape", "input_names", "output_names", mode="before")(
        _comma_list
    )


def _parse_fields(fields: dict[str, str]) -> ModelUploadFields:
    try:
        return ModelUploadFields.model_validate(
            {key: value for key, value in fields.items() if value != ""}
        )
    except ValidationError as error:
        raise RequestValidationError(
            [{**issue, "loc": ("form", *issue["loc"])} for issue in error.errors()]
        ) from error


_MULTIPART_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "name", "task_type"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    **ModelUploadFields.model_json_schema()["properties"],
                },
            }
        }
    },
}


@router.post(
    UPLOAD_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    responses={413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    **requires(Action.RESOURCES_UPLOAD, requestBody=_MULTIPART_BODY),
)
async def upload_model(request: Request) -> ModelAccepted:
    """Upload a model (.onnx, .pt/.pth, .h5, .pb, zipped SavedModel) as multipart/form-data.

    The answer comes once the file is on disk; validation and conversion to ONNX then run in the
    background: follow ``status`` (``uploaded → converting → ready | invalid | failed``).
    """
    state = platform(request)
    settings = state.settings
    form = await receive_upload(
        request,
        settings.staging_dir,
        {"file": FileField(settings.max_model_bytes, check_upload_filename)},
    )
    try:
        fields = _parse_fields(form.fields)
        return await _accept(state, request, form.files["file"], fields)
    finally:
        form.discard()


async def _accept(
    state: PlatformState, request: Request, upload: ReceivedFile, fields: ModelUploadFields
) -> ModelAccepted:
    extension = check_upload_filename(upload.filename)
    framework = framework_of(extension)
    if framework == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
        raise MissingExtra(
            f"{extension} models need the TensorFlow extra, which is not installed here; "
            f"install it with: {TENSORFLOW_INSTALL}"
        )
    has_graph_names = bool(fields.input_names and fields.output_names)
    source_format = await run_in_threadpool(
        detect_source_format, upload.path, extension, has_graph_names
    )
    model_id = uuid.uuid4().hex
    relative_path = f"models/{model_id}/source{extension}"
    target = resolve_inside(state.settings.artifacts_dir, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    upload.path.rename(target)
    details: dict[str, Any] = {}
    if has_graph_names:
        details["graph_names"] = {"inputs": fields.input_names, "outputs": fields.output_names}
    try:
        await state.ops.create_model(
            model={
                "id": model_id,
                "name": fields.name,
                "description": fields.description,
                "framework": framework,
                "source_format": source_format,
                "task_type": fields.task_type,
                "architecture": fields.architecture,
                "num_classes": fields.num_classes,
                "input_shape": _json(fields.input_shape),
                "weights_origin": "uploaded",
                "source_filename": upload.filename,
                "created_by": principal_of(request).user_id,
                "details": details,
            },
            source={
                "path": relative_path,
                "sha256": upload.sha256,
                "size_bytes": upload.size_bytes,
            },
        )
    except BaseException:
        target.unlink(missing_ok=True)
        target.parent.rmdir()
        raise
    request.state.audit_detail = f"model {model_id} ({upload.filename}, {upload.size_bytes} bytes)"
    try:
        state.background.convert_model(model_id)
    except Exception as error:  # resumed at the next start; the model says "uploaded" meanwhile
        log.error("could not start the conversion of %s: %s", model_id, error)
    return ModelAccepted(id=model_id, status="uploaded", url=f"{UPLOAD_PATH}/{model_id}")


def _json(values: list[int] | None) -> str | None:
    import json

    return None if values is None else json.dumps(values)


# What a model's answer shows as stored; the rest is derived below.
_STORED_FIELDS = (set(ModelOut.model_fields) & record_fields(ModelRecord)) - {"source", "onnx"}


def model_out(model: ModelRecord) -> ModelOut:
    summary = model.details.get("summary", {})
    onnx = model.onnx
    return ModelOut.model_validate(
        {
            **{name: getattr(model, name) for name in _STORED_FIELDS},
            "is_preset": model.preset is not None,
            "source": {
                "filename": model.source_filename,
                "format": model.source.format,
                "sha256": model.source.sha256,
                "size_bytes": model.source.size_bytes,
            },
            "onnx": None
            if onnx is None
            else {"sha256": onnx.sha256, "size_bytes": onnx.size_bytes},
            "parameter_count": model.details.get(
                "source_parameter_count", summary.get("parameter_count")
            ),
            "inputs": summary.get("inputs", []),
            "outputs": summary.get("outputs", []),
            "parity": model.details.get("parity"),
            "details": dict(model.details),
        }
    )


@router.get(UPLOAD_PATH, **requires(Action.RESOURCES_READ))
async def list_models(
    db: ReadDb,
    task_type: TaskType | None = None,
    framework: Framework | None = None,
    status: ModelStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ModelPage:
    """Presets and uploads, newest first; filter by task type, framework and status."""
    filters = {"task_type": task_type, "framework": framework, "status": status}
    page = queries.list_models(db, {k: v for k, v in filters.items() if v}, limit, offset)
    return ModelPage(
        items=[model_out(model) for model in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.get(f"{UPLOAD_PATH}/{{model_id}}", **requires(Action.RESOURCES_READ))
async def get_model(model_id: str, db: ReadDb) -> ModelOut:
    return model_out(queries.required(queries.model_by_id, db, model_id, "model"))


@router.delete(
    f"{UPLOAD_PATH}/{{model_id}}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"model": ErrorBody, "description": "a preset, or in use"}},
    **requires(Action.RESOURCES_DELETE),
)
async def delete_model(model_id: str, request: Request) -> None:
    """Delete a model with its files. Presets cannot be deleted; a model in use answers 409."""
    state = platform(request)
    paths = await state.ops.delete_model(model_id=model_id)
    for relative_path in paths:
        file_path = resolve_inside(state.settings.artifacts_dir, relative_path)
        file_path.unlink(missing_ok=True)
    folder = resolve_inside(state.settings.artifacts_dir, f"models/{model_id}")
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    request.state.audit_detail = f"model {model_id}"
