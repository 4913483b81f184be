"""Models: upload (streamed to disk, converted in the background), list, show, delete."""

from __future__ import annotations

import importlib.util
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from actors.models import architectures
from actors.models.formats import (
    TENSORFLOW_INSTALL,
    check_upload_filename,
    detect_source_format,
    framework_of,
)
from cvplatform.config import Settings
from cvplatform.errors import MissingExtra
from cvplatform.schemas import (
    ErrorBody,
    Framework,
    ModelAccepted,
    ModelOut,
    ModelPage,
    ModelStatus,
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
    ReceivedFile,
    read_json_body,
    receive_upload,
    sends_json,
    take_finished,
)
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


GraphName = Annotated[str, Field(min_length=1, max_length=200)]


class ModelUploadFields(WireModel):
    """The form fields that travel with the file."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    task_type: TaskType
    architecture: str | None = Field(
        None, max_length=200, json_schema_extra={"pattern": architectures.NAME_PATTERN}
    )
    num_classes: int | None = Field(None, ge=1, le=100_000)
    input_shape: list[Annotated[int, Field(ge=1, le=16384)]] | None = Field(None, max_length=4)
    # A frozen TensorFlow graph (.pb) needs both: its input and output tensor names.
    input_names: list[GraphName] | None = Field(None, max_length=64)
    output_names: list[GraphName] | None = Field(None, max_length=64)

    _lists = field_validator("input_shape", "input_names", "output_names", mode="before")(
        _comma_list
    )

    @field_validator("architecture")
    @classmethod
    def _architecture_is_a_name(cls, architecture: str | None) -> str | None:
        # A path would be read by the conversion (ultralytics opens any yaml it is given).
        refused = None if architecture is None else architectures.path_refusal(architecture)
        if refused is not None:
            raise ValueError(refused)
        return architecture


class ModelFromUpload(ModelUploadFields):
    """The JSON body that makes a model of a finished resumable upload (``/api/v1/uploads``)."""

    upload_id: UploadId


def upload_file_fields(settings: Settings) -> dict[str, FileField]:
    """The file a model upload takes, multipart or resumable: its size limit and name check."""
    return {"file": FileField(settings.max_model_bytes, check_upload_filename)}


def _parse_fields(fields: dict[str, str]) -> ModelUploadFields:
    try:
        return ModelUploadFields.model_validate(
            {key: value for key, value in fields.items() if value != ""}
        )
    except ValidationError as error:
        raise RequestValidationError(
            [{**issue, "loc": ("form", *issue["loc"])} for issue in error.errors()]
        ) from error


# In a form, a list travels as one comma-separated field (``input_shape=3,224,224``).
_FORM_LISTS = {
    "input_shape": {
        "type": "string",
        "pattern": r"^[1-9][0-9]{0,3}(,[1-9][0-9]{0,3}){0,3}$",
        "description": "C,H,W (or more dimensions, up to 4), comma-separated",
        "examples": ["3,224,224"],
    },
    **{
        names: {
            "type": "string",
            "pattern": r"^[^,]{1,200}(,[^,]{1,200}){0,63}$",
            "description": f"{names.split('_')[0]} tensor names, comma-separated (for a .pb)",
        }
        for names in ("input_names", "output_names")
    },
}

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
                    **_FORM_LISTS,
                },
            }
        },
        "application/json": {"schema": ModelFromUpload.model_json_schema()},
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
async def upload_model(request: Request) -> ModelAccepted:
    """Upload a model (.onnx, .pt/.pth, .h5, .pb, zipped SavedModel) as multipart/form-data, or
    make one of a finished resumable upload: ``application/json`` with ``upload_id`` and the same
    fields.

    The answer comes once the file is on disk; validation and conversion to ONNX then run in the
    background: follow ``status`` (``uploaded → converting → ready | invalid | failed``).
    """
    state = platform(request)
    settings = state.settings
    if sends_json(request):
        return await _accept_finished_upload(state, request)
    form = await receive_upload(request, settings, upload_file_fields(settings))
    try:
        fields = _parse_fields(form.fields)
        return await _accept(state, request, form.files["file"], fields)
    finally:
        form.discard()


async def _accept_finished_upload(state: PlatformState, request: Request) -> ModelAccepted:
    settings = state.settings
    body = await read_json_body(request, ModelFromUpload, settings.max_request_bytes)
    wanted: dict[str, tuple[str, UploadKind]] = {"file": (body.upload_id, "model")}
    form = take_finished(state.uploads, principal_of(request), wanted, settings.staging_dir)
    try:
        return await _accept(state, request, form.files["file"], body)
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
    if source_format == "torch_state_dict" and fields.architecture is not None:
        await run_in_threadpool(
            architectures.check_architecture, fields.architecture, fields.task_type
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
    limit: Limit = 50,
    offset: Offset = 0,
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
