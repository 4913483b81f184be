"""Multipart uploads streamed straight to disk: the file part is hashed and counted as it arrives
and refused the moment it passes its limit; small text fields are kept in memory.

Starlette's own form parser would first spool the whole file to a temporary file; this one writes
it once, under the staging folder, from where it is renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from cvplatform.errors import InvalidInput, PayloadTooLarge

MAX_FIELD_BYTES = 64 * 1024
_FLUSH_BYTES = 1024 * 1024


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    sha256: str = ""
    size_bytes: int = 0


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None

    def discard(self) -> None:
        if self.file is not None:
            self.file.path.unlink(missing_ok=True)


class _FileSink:
    """The file part on its way to disk: buffered in memory up to a MiB, written in a thread."""

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
        self,
        file_field: str,
        open_sink: Callable[[str], _FileSink],
        check_filename: Callable[[str], object],
    ) -> None:
        self.form = ReceivedForm()
        self.sink: _FileSink | None = None
        self._file_field = file_field
        self._open_sink = open_sink
        self._check_filename = check_filename
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._field: tuple[str, bytearray] | None = None

    def on_part_begin(self) -> None:
        self._headers, self._field = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value.decode(
            "utf-8", "replace"
        )
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name == self._file_field and filename is not None:
            if self.sink is not None:
                raise InvalidInput(f"send one file in the field {self._file_field!r}")
            text = filename.decode("utf-8", "replace")
            self._check_filename(text)
            self.sink = self._open_sink(text)
        else:
            self._field = (name, bytearray())

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is None:
            assert self.sink is not None
            self.sink.add(bytes(data[start:end]))
            return
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


async def receive_upload(
    request: Request,
    staging_dir: Path,
    max_file_bytes: int,
    check_filename: Callable[[str], object],
    file_field: str = "file",
) -> ReceivedForm:
    """Read a ``multipart/form-data`` body, its file part streamed to ``staging_dir``.

    Raises:
        InvalidInput: not multipart, malformed, a bad file name (from ``check_filename``),
            an over-long field, or no file.
        PayloadTooLarge: the file passed ``max_file_bytes``; nothing is left on disk.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidInput("send the upload as multipart/form-data (curl -F file=@model.onnx ...)")
    collector = _FormCollector(
        file_field, lambda name: _FileSink(staging_dir, name, max_file_bytes), check_filename
    )
    parser = MultipartParser(options[b"boundary"], callbacks=vars_of(collector))  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if collector.sink is not None and collector.sink.should_flush:
                await run_in_threadpool(collector.sink.flush)
        parser.finalize()
        if collector.sink is None:
            raise InvalidInput(f"the upload has no file in the field {file_field!r}")
        await run_in_threadpool(collector.sink.close)
    except BaseException as error:
        if collector.sink is not None:
            collector.sink.discard()
        if isinstance(error, MultipartParseError | ValueError):
            raise InvalidInput(f"malformed multipart body: {error}") from error
        raise
    collector.form.file = collector.sink.received
    return collector.form


def vars_of(collector: _FormCollector) -> dict[str, Callable[..., None]]:
    names = (
        "on_part_begin",
        "on_part_data",
        "on_part_end",
        "on_header_field",
        "on_header_value",
        "on_header_end",
        "on_headers_finished",
    )
    return {name: getattr(collector, name) for name in names}
