"""Resumable uploads over HTTP (tus 1.0.0: core, creation, expiration, termination).

``POST /api/v1/uploads`` makes an empty upload of a declared length; ``PATCH`` appends raw bytes
from the offset that ``HEAD`` reports; a dropped connection loses nothing already received. Once
complete, ``POST /api/v1/models`` or ``/api/v1/datasets`` with ``{"upload_id": ...}`` turns it
into a model or dataset. The protocol itself is ``serve_apps.api.tus`` and
``serve_apps.api.resumable``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cvplatform.clock import to_iso
from cvplatform.config import Settings
from cvplatform.errors import (
    InvalidInput,
    PayloadTooLarge,
    TusVersionUnsupported,
    UnsupportedMediaType,
)
from cvplatform.schemas import ErrorBody, UploadKind, UploadOut
from serve_apps.api.disk_reserve import DiskReserve, disk_full, within_reserve
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.resumable import BUFFERED_BYTES
from serve_apps.api.routes import datasets, models
from serve_apps.api.state import platform
from serve_apps.api.tus import (
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    UploadRecord,
    http_date,
    parse_decimal,
    parse_metadata,
    upload_kind,
)
from serve_apps.api.uploads import FileField
from serve_apps.auth.policy import Action

router = APIRouter(route_class=GuardedRoute, tags=["uploads"])
UPLOADS_PATH = "/api/v1/uploads"
UPLOAD_PATH = f"{UPLOADS_PATH}/{{upload_id}}"

TusResumable = Annotated[
    str | None, Header(description=f"the protocol version: {TUS_VERSION}, else 412")
]


def upload_kinds(settings: Settings) -> dict[UploadKind, FileField]:
    """Each kind's size limit and file name check: the multipart routes' own."""
    dataset_files = datasets.upload_file_fields(settings)
    return {
        "model": models.upload_file_fields(settings)["file"],
        "dataset": dataset_files["file"],
        "dataset_metadata": dataset_files["metadata"],
    }


def largest_upload(settings: Settings) -> int:
    return max(kind.max_bytes for kind in upload_kinds(settings).values())


def _speaks_tus(version: str | None) -> None:
    if version != TUS_VERSION:
        raise TusVersionUnsupported(
            f"send the header Tus-Resumable: {TUS_VERSION} (got {version!r}); "
            "it is the one version spoken here"
        )


def _progress_headers(record: UploadRecord, expiry_s: float) -> dict[str, str]:
    return {
        "Upload-Offset": str(record.offset),
        "Upload-Length": str(record.length),
        "Upload-Expires": http_date(record.expires_at(expiry_s)),
        "Cache-Control": "no-store",
    }


def _find(request: Request, upload_id: str) -> UploadRecord:
    principal = principal_of(request)
    return platform(request).uploads.find(upload_id, principal.user_id, principal.role == "admin")


@router.options(UPLOADS_PATH, status_code=status.HTTP_204_NO_CONTENT, **requires(Action.PUBLIC))
async def upload_options(request: Request) -> Response:
    """What this server speaks: ``Tus-Version``, ``Tus-Extension`` and ``Tus-Max-Size``."""
    headers = {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(largest_upload(platform(request).settings)),
    }
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.post(
    UPLOADS_PATH,
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": ErrorBody, "description": "Upload-Length or Upload-Metadata malformed"},
        412: {"model": ErrorBody, "description": "no Tus-Resumable: 1.0.0"},
        413: {"model": ErrorBody, "description": "longer than the limit for its kind"},
        507: {"model": ErrorBody, "description": "the data disk would keep less than its reserve"},
    },
    **requires(Action.RESOURCES_UPLOAD),
)
async def create_upload(
    request: Request,
    tus_resumable: TusResumable = None,
    upload_length: Annotated[str | None, Header(description="the file's size in bytes")] = None,
    upload_metadata: Annotated[
        str | None,
        Header(
            description="comma-separated `key base64(value)` pairs: `filename` and `kind` "
            "(`model`, `dataset` or `dataset_metadata`) are required"
        ),
    ] = None,
) -> JSONResponse:
    """Start a resumable upload of ``Upload-Length`` bytes; ``Location`` is where to send them.

    The size limit and file name check of its kind apply here, before any byte is sent. Uploads
    that receive nothing for ``CVP_UPLOAD_EXPIRY_S`` are deleted (``Upload-Expires``).
    """
    _speaks_tus(tus_resumable)
    state = platform(request)
    length = parse_decimal(upload_length, "Upload-Length")
    metadata = parse_metadata(upload_metadata)
    kind = upload_kind(metadata)
    filename = metadata.get("filename") or metadata.get("name")
    if not filename:
        raise InvalidInput("Upload-Metadata: give filename, the file's name (base64-encoded)")
    spec = upload_kinds(state.settings)[kind]
    spec.check_filename(filename)
    if length > spec.max_bytes:
        raise PayloadTooLarge(
            f"{length} bytes pass the limit of {spec.max_bytes} bytes for a {kind} upload"
        )
    DiskReserve.of(state.settings).check(length)
    record = await run_in_threadpool(
        state.uploads.create,
        principal_of(request).user_id,
        kind,
        filename,
        length,
        upload_metadata or "",
    )
    request.state.audit_detail = f"upload {record.id} ({kind} {filename}, {length} bytes)"
    url = f"{UPLOADS_PATH}/{record.id}"
    expiry_s = state.settings.upload_expiry_s
    created = UploadOut(
        id=record.id,
        url=url,
        kind=kind,
        filename=filename,
        length=length,
        offset=0,
        expires_at=to_iso(record.expires_at(expiry_s)),
    )
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": url, **_progress_headers(record, expiry_s)},
    )


@router.head(
    UPLOAD_PATH,
    responses={404: {"description": "no such upload, someone else's, or expired"}},
    **requires(Action.RESOURCES_UPLOAD),
)
async def upload_offset(
    upload_id: str, request: Request, tus_resumable: TusResumable = None
) -> Response:
    """How far the upload has come: ``Upload-Offset`` (the bytes kept, durably) and
    ``Upload-Length``; send the rest from that offset."""
    _speaks_tus(tus_resumable)
    record = _find(request, upload_id)
    headers = _progress_headers(record, platform(request).settings.upload_expiry_s)
    if record.metadata:
        headers["Upload-Metadata"] = record.metadata
    return Response(status_code=status.HTTP_200_OK, headers=headers)


_OFFSET_BODY = {
    "required": True,
    "content": {OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


@router.patch(
    UPLOAD_PATH,
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: {"model": ErrorBody, "description": "no such upload, someone else's, or expired"},
        409: {"model": ErrorBody, "description": "Upload-Offset is not the upload's offset"},
        413: {"model": ErrorBody, "description": "past the declared Upload-Length"},
        415: {"model": ErrorBody, "description": f"Content-Type is not {OFFSET_CONTENT_TYPE}"},
        507: {"model": ErrorBody, "description": "the data disk would keep less than its reserve"},
    },
    **requires(Action.RESOURCES_UPLOAD, requestBody=_OFFSET_BODY),
)
async def append_to_upload(
    upload_id: str,
    request: Request,
    tus_resumable: TusResumable = None,
    upload_offset: Annotated[
        str | None, Header(description="where these bytes start: the offset HEAD gives")
    ] = None,
) -> Response:
    """Append the body's bytes at ``Upload-Offset``; they are on disk (fsynced) when this
    answers with the new ``Upload-Offset``. If the connection drops, what arrived is kept."""
    _speaks_tus(tus_resumable)
    state = platform(request)
    record = _find(request, upload_id)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(
            f"send the bytes as Content-Type: {OFFSET_CONTENT_TYPE}, not {content_type!r}"
        )
    offset = parse_decimal(upload_offset, "Upload-Offset")
    declared = request.headers.get("content-length")
    declared_bytes = None if declared is None else parse_decimal(declared, "Content-Length")
    reserve = DiskReserve.of(state.settings)
    if declared_bytes:
        reserve.check(declared_bytes)
    chunks = within_reserve(request.stream(), reserve, BUFFERED_BYTES)
    try:
        record = await state.uploads.append(record, offset, chunks, declared_bytes)
    except ClientDisconnect:
        request.state.audit_detail = f"upload {upload_id}: connection dropped, kept what arrived"
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    except OSError as error:
        if (full := disk_full(error)) is not None:
            raise full from error
        raise
    request.state.audit_detail = f"upload {upload_id}: {offset}..{record.offset} of {record.length}"
    headers = _progress_headers(record, state.settings.upload_expiry_s)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.delete(
    UPLOAD_PATH,
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody, "description": "in use"}},
    **requires(Action.RESOURCES_UPLOAD),
)
async def delete_upload(
    upload_id: str, request: Request, tus_resumable: TusResumable = None
) -> Response:
    """Give up an upload: its bytes are deleted at once."""
    _speaks_tus(tus_resumable)
    state = platform(request)
    record = _find(request, upload_id)
    await run_in_threadpool(state.uploads.delete, record)
    request.state.audit_detail = f"upload {upload_id}"
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class TusResumableHeader:
    """Every answer under ``/api/v1/uploads``, errors included, says ``Tus-Resumable: 1.0.0``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == UPLOADS_PATH or path.startswith(f"{UPLOADS_PATH}/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                version = (b"tus-resumable", TUS_VERSION.encode("latin-1"))
                message["headers"] = [*message.get("headers", ()), version]
            await send(message)

        await self.app(scope, receive, send_with_version)
