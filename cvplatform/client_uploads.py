"""The SDK's resumable uploads (tus 1.0.0 against ``/api/v1/uploads``), with a progress bar.

A file is sent in ``PATCH`` requests of ``chunk_bytes``, each streamed from the file. When a
connection drops or the server answers 409 or 5xx, the SDK asks (``HEAD``) how many bytes the
server kept and goes on from there, up to ``retries`` times in a row with a growing wait.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO, TypeVar

import httpx

from cvplatform.errors import CvpError, NotFound

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
UPLOADS_PATH = "/api/v1/uploads"
T = TypeVar("T")
MIB = 1024 * 1024
_READ_BYTES = MIB
# Worth asking for the offset and trying again: another request still writing (409), or the
# server briefly unwell.
_RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})


@dataclass(frozen=True)
class UploadOptions:
    """How the SDK sends files.

    Args:
        chunk_bytes: bytes per ``PATCH`` request (the server keeps what arrived of a dropped one).
        retries: failed attempts in a row (connection errors, 409, 5xx) before giving up.
        backoff_s: the first wait between attempts; it doubles each time, up to 30 s.
    """

    chunk_bytes: int = 64 * MIB
    retries: int = 8
    backoff_s: float = 0.5


class ProgressBar:
    """A one-line progress bar on a terminal stream: percent, bytes and rate."""

    def __init__(self, label: str, total: int, stream: TextIO, interval_s: float = 0.1) -> None:
        self._label, self._total, self._stream = label, total, stream
        self._interval_s = interval_s
        self._started = self._shown_at = time.monotonic()
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        now = time.monotonic()
        if now - self._shown_at >= self._interval_s:
            self._shown_at = now
            self._show(now)

    def close(self) -> None:
        self._show(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()

    def _show(self, now: float) -> None:
        fraction = self._done / self._total if self._total else 1.0
        filled = int(fraction * 30)
        rate = self._done / MIB / max(now - self._started, 1e-6)
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%} "
            f"{self._done / MIB:.1f}/{self._total / MIB:.1f} MiB {rate:.1f} MiB/s"
        )
        self._stream.flush()


def _metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode('utf-8')).decode('ascii')}"
        for key, value in values.items()
    )


def _raise_for(response: httpx.Response) -> None:
    if response.is_error:
        from cvplatform.client import error_from_response

        raise error_from_response(response)


class ResumableUpload:
    """One file on its way to the server; :meth:`send` returns the finished upload's id."""

    def __init__(
        self,
        http: httpx.Client,
        source: Path,
        kind: str,
        filename: str,
        options: UploadOptions,
        progress: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http, self._source, self._options, self._sleep = http, source, options, sleep
        self._kind, self._filename = kind, filename
        self._length = source.stat().st_size
        show = sys.stderr.isatty() if progress is None else progress
        self._bar = ProgressBar(filename, self._length, sys.stderr) if show else None
        self._failures = 0

    def send(self) -> str:
        """Create the upload and send every byte, resuming after failures.

        Returns:
            The upload's id, for ``{"upload_id": ...}``.

        Raises:
            httpx.TransportError, CvpError: the last failure, once ``retries`` in a row failed;
                at once for an answer not worth retrying (403, 404, 413...).
        """
        url = self._retrying(self._create)
        offset = 0
        try:
            with self._source.open("rb") as stream:
                while offset < self._length:
                    try:
                        offset = self._patch(url, stream, offset)
                        self._failures = 0
                    except (httpx.TransportError, CvpError) as error:
                        self._wait_after(error)
                        offset = self._retrying(lambda: self._offset(url))
        finally:
            if self._bar is not None:
                self._bar.update(offset)
                self._bar.close()
        return url.rstrip("/").rsplit("/", 1)[-1]

    def _retrying(self, call: Callable[[], T]) -> T:
        while True:
            try:
                return call()
            except (httpx.TransportError, CvpError) as error:
                self._wait_after(error)

    def _wait_after(self, error: httpx.TransportError | CvpError) -> None:
        """Wait before the next attempt, or raise ``error``: not worth retrying, or too many."""
        if isinstance(error, CvpError) and getattr(error, "http_status", 0) not in _RETRY_STATUSES:
            raise error
        self._failures += 1
        if self._failures > self._options.retries:
            raise error
        self._sleep(min(30.0, self._options.backoff_s * 2 ** (self._failures - 1)))

    def _create(self) -> str:
        answer = self._http.post(
            UPLOADS_PATH,
            headers={
                "Tus-Resumable": TUS_VERSION,
                "Upload-Length": str(self._length),
                "Upload-Metadata": _metadata({"filename": self._filename, "kind": self._kind}),
            },
        )
        _raise_for(answer)
        return answer.headers["location"]

    def _offset(self, url: str) -> int:
        answer = self._http.head(url, headers={"Tus-Resumable": TUS_VERSION})
        if answer.status_code == 404:  # a HEAD answer has no body to say so
            raise NotFound(f"the upload {url} is gone (expired or deleted): send the file again")
        _raise_for(answer)
        offset = int(answer.headers["upload-offset"])
        if self._bar is not None:
            self._bar.update(offset)
        return offset

    def _patch(self, url: str, stream: BinaryIO, offset: int) -> int:
        size = min(self._options.chunk_bytes, self._length - offset)
        answer = self._http.patch(
            url,
            content=self._read(stream, offset, size),
            headers={
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": str(offset),
                "Content-Type": OFFSET_CONTENT_TYPE,
                "Content-Length": str(size),
            },
        )
        _raise_for(answer)
        return int(answer.headers["upload-offset"])

    def _read(self, stream: BinaryIO, offset: int, size: int) -> Iterator[bytes]:
        stream.seek(offset)
        sent = 0
        while sent < size:
            block = stream.read(min(_READ_BYTES, size - sent))
            if not block:
                raise OSError(f"{self._source} became shorter while it was being uploaded")
            sent += len(block)
            if self._bar is not None:
                self._bar.update(offset + sent)
            yield block
