"""Files arriving for a model or dataset, in the staging folder from where they are renamed into
place: multipart uploads streamed straight to disk, or finished resumable uploads named in a JSON
body (``take_finished``).

Multipart: each file part is hashed and counted as it arrives and refused the moment it passes its
limit; small text fields are kept in memory. Starlette's own form parser would first spool every
file to a temporary file; this one writes each once. The number of parts and the header bytes of
each are bounded too (413), and so is what the upload may leave free on the disk (507).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cvplatform.config import Settings
from cvplatform.errors import InvalidInput, PayloadTooLarge
from cvplatform.schemas import Principal, UploadKind
from serve_apps.api.disk_reserve import DiskReserve, disk_full, within_reserve
from serve_apps.api.resumable import ResumableUploads
from serve_apps.api.tus import check_finished

Body = TypeVar("Body", bound=BaseModel)

MAX_FIELD_BYTES = 64 * 1024
_FLUSH_BYTES = 1024 * 1024
# What a file part holds in memory before it is written: one flush's worth and a chunk more.
_BUFFERED_BYTES = 2 * _FLUSH_BYTES
# A part needs two or three (Content-Disposition, Content-Type); the parser's own default.
_MAX_HEADERS_PER_PART = 8


@dataclass(frozen=True)
class FileField:
    """A file part the route accepts: its size limit and how its name is checked."""

    max_bytes: int
    check_filename: Callable[[str], object]
    required: bool = True


@dataclass(frozen=True)
class MultipartLimits:
    """What one multipart body may hold besides its files' sizes (each past it: 413)."""

    max_parts: int
    max_part_header_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> MultipartLimits:
        return cls(settings.max_multipart_fields, settings.max_part_header_bytes)

    def too_many_parts(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the upload has more than {self.max_parts} parts (form fields and files "
            "together); send only the fields the route takes"
        )

    def too_many_header_bytes(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the headers of a part of the upload pass the limit of "
            f"{self.max_part_header_bytes} bytes (or {_MAX_HEADERS_PER_PART} headers)"
        )


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    sha256: str = ""
    size_bytes: int = 0


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, ReceivedFile] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove whatever is still in the staging folder (moved files are gone already)."""
        for received in self.files.values():
            received.path.unlink(missing_ok=True)


class _FileSink:
    """A file part on its way to disk: buffered in memory up to a MiB, written in a thread."""

    def __init__(self, staging_dir: Path, filename: str, max_bytes: int) -> None:
        staging_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=staging_dir, suffix=".upload")
        self._file = os.fdopen(fd, "wb")
        self.received = ReceivedFile(Path(path), filename)
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._max_bytes = max_bytes

    def add(self, data: bytes) -> None:
        self.received.size_bytes += len(data)
        if self.received.size_bytes > self._max_bytes:
            raise PayloadTooLarge(f"the file passes the limit of {self._max_bytes} bytes")
        self._pending.append(data)
        self._pending_bytes += len(data)

    @property
    def should_flush(self) -> bool:
        return self._pending_bytes >= _FLUSH_BYTES

    def flush(self) -> None:
        for block in self._pending:
            self._digest.update(block)
            self._file.write(block)
        self._pending, self._pending_bytes = [], 0

    def discard(self) -> None:
        self._file.close()
        self.received.path.unlink(missing_ok=True)

    def close(self) -> None:
        self.flush()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.received.sha256 = self._digest.hexdigest()


class _FormCollector:
    """The parser's callbacks: which part is which, and where its bytes go."""

    def __init__(
        self, staging_dir: Path, file_fields: dict[str, FileField], limits: MultipartLimits
    ) -> None:
        self.form = ReceivedForm()
        self.sinks: dict[str, _FileSink] = {}
        self.current: _FileSink | None = None
        self._staging_dir = staging_dir
        self._file_fields = file_fields
        self._limits = limits
        self._parts = 0
        self._header_bytes = 0
        self._headers: dict[str, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._field: tuple[str, bytearray] | None = None

    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._limits.max_parts:
            raise self._limits.too_many_parts()
        self._headers, self._field, self.current = {}, None, None
        self._header_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def _count_header_bytes(self, size: int) -> None:
        # Counted before they are kept: a huge header never reaches memory whole.
        self._header_bytes += size
        if self._header_bytes > self._limits.max_part_header_bytes:
            raise self._limits.too_many_header_bytes()

    def on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        # Kept as bytes: a UTF-8 file name is not latin-1, and the options parser reads bytes.
        self._headers[name] = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self._field = (name, bytearray())
            return
        spec = self._file_fields.get(name)
        if spec is None:
            accepted = ", ".join(sorted(self._file_fields))
            raise InvalidInput(f"unexpected file field {name!r}; files go in: {accepted}")
        if name in self.sinks:
            raise InvalidInput(f"send one file in the field {name!r}")
        text = filename.decode("utf-8", "replace")
        spec.check_filename(text)
        self.current = self.sinks[name] = _FileSink(self._staging_dir, text, spec.max_bytes)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current is not None:
            self.current.add(bytes(data[start:end]))
            return
        if self._field is None:
            raise InvalidInput("malformed multipart body: data outside any part")
        value = self._field[1]
        value += data[start:end]
        if len(value) > MAX_FIELD_BYTES:
            raise InvalidInput(
                f"the field {self._field[0]!r} is longer than {MAX_FIELD_BYTES} bytes"
            )

    def on_part_end(self) -> None:
        if self._field is not None:
            name, value = self._field
            self.form.fields[name] = value.decode("utf-8", "replace")
            self._field = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        names = (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
        return {name: getattr(self, name) for name in names}


async def receive_upload(
    request: Request, settings: Settings, file_fields: dict[str, FileField]
) -> ReceivedForm:
    """Read a ``multipart/form-data`` body, its file parts streamed to the staging folder.

    Raises:
        InvalidInput: not multipart, malformed, a bad file name, an over-long field, an
            unexpected file field, or a required file missing.
        PayloadTooLarge: a file passed its limit, or the body has too many parts or a part too
            many header bytes; nothing is left on disk.
        InsufficientStorage: the disk would keep less than its reserve (checked by
            ``Content-Length`` before reading, and as the body grows); nothing is left on disk.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidInput(
            "send the upload as multipart/form-data (curl -F file=@name ...), or as "
            "application/json naming a finished resumable upload (upload_id)"
        )
    reserve = DiskReserve.of(settings)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        reserve.check(int(declared))
    limits = MultipartLimits.of(settings)
    collector = _FormCollector(settings.staging_dir, file_fields, limits)
    parser = MultipartParser(
        options[b"boundary"],
        callbacks=collector.callbacks(),  # type: ignore[arg-type]
        # The parser's own bound is per header line (4 KiB unless told); the collector's is
        # the part's headers together.
        max_header_size=limits.max_part_header_bytes,
        max_header_count=_MAX_HEADERS_PER_PART,
    )
    try:
        async for chunk in within_reserve(request.stream(), reserve, _BUFFERED_BYTES):
            parser.write(chunk)
            if collector.current is not None and collector.current.should_flush:
                await run_in_threadpool(collector.current.flush)
        parser.finalize()
        missing = [
            name
            for name, spec in file_fields.items()
            if spec.required and name not in collector.sinks
        ]
        if missing:
            raise InvalidInput(f"the upload has no file in the field {missing[0]!r}")
        for sink in collector.sinks.values():
            await run_in_threadpool(sink.close)
    except BaseException as error:
        for sink in collector.sinks.values():
            sink.discard()
        if isinstance(error, MultipartParseError) and str(error).startswith("Maximum header"):
            raise limits.too_many_header_bytes() from error
        if isinstance(error, MultipartParseError | ValueError):
            raise InvalidInput(f"malformed multipart body: {error}") from error
        if isinstance(error, OSError) and (full := disk_full(error)) is not None:
            raise full from error
        raise
    collector.form.files = {name: sink.received for name, sink in collector.sinks.items()}
    return collector.form


# --- finished resumable uploads, named in a JSON body ---------------------------------------


def sends_json(request: Request) -> bool:
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    return content_type == b"application/json"


async def read_json_body(request: Request, model: type[Body], limit: int) -> Body:
    """A JSON body of at most ``limit`` bytes, validated as ``model`` (422 naming the fields)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the JSON body is larger than the limit of {limit} bytes")
    try:
        return model.model_validate_json(bytes(body))
    except ValidationError as error:
        issues = [{**issue, "loc": ("body", *issue["loc"])} for issue in error.errors()]
        raise RequestValidationError(issues) from error


def take_finished(
    uploads: ResumableUploads,
    principal: Principal,
    wanted: dict[str, tuple[str, UploadKind]],
    staging_dir: Path,
) -> ReceivedForm:
    """Move finished resumable uploads into ``staging_dir``, as if they had come as the file
    parts of a multipart body: ``wanted`` maps a part's name to (upload id, kind it must be).

    Every upload is checked before any is moved, so a refusal leaves them all in place.

    Raises:
        NotFound: no such upload, someone else's (unless the caller is an admin), or expired.
        UploadIncomplete: an upload has not received all its bytes.
        InvalidInput: an upload was created for another kind of file.
    """
    is_admin = principal.role == "admin"
    records = {
        name: uploads.find(upload_id, principal.user_id, is_admin)
        for name, (upload_id, _) in wanted.items()
    }
    for name, record in records.items():
        check_finished(record, wanted[name][1])
    form = ReceivedForm()
    for name, record in records.items():
        path = uploads.take(record, staging_dir)
        form.files[name] = ReceivedFile(path, record.filename, record.sha256 or "", record.length)
    return form
