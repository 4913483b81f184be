"""Resumable uploads on disk (the tus 1.0.0 protocol of ``serve_apps.api.tus``), as plain Python
over a folder: created, appended to, taken, expired. The routes in ``routes/uploads.py`` adapt it.

Each upload is two files in the folder: ``<id>.part`` (the bytes so far) and ``<id>.json`` (its
record: owner, kind, file name, length, offset, times, and the SHA-256 once complete). The record
is rewritten only after the part file is fsynced, so the offset it states is always durable; a
part file longer than its record (a crash mid-``PATCH``) is cut back to it before the next append.

The running SHA-256 of each upload is kept in memory between ``PATCH`` requests, keyed by upload
and offset; after a restart, or when the offset moved otherwise, the prefix on disk is hashed once
again. That, and the one-writer-per-upload rule, assume one API process (the API server actor).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from cvplatform.clock import Clock, from_iso, to_iso
from cvplatform.errors import (
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    UploadBusy,
    UploadStalled,
)
from cvplatform.schemas import UploadKind
from serve_apps.api.tus import UPLOAD_ID, UploadRecord, check_append, is_expired

_FLUSH_BYTES = 4 * 1024 * 1024
# What a PATCH holds before it is on disk: the block being written and the one filling up.
BUFFERED_BYTES = 2 * _FLUSH_BYTES
# A PATCH that receives nothing for this long is ended, keeping what it got: a connection that
# died without closing (no FIN ever comes) would otherwise hold the upload against the resume.
IDLE_TIMEOUT_S = 60.0
_HASH_READ_BYTES = 8 * 1024 * 1024
_START_WRITEBACK = hasattr(os, "posix_fadvise")


# --- the uploads of one API process -----------------------------------------------------------


class ResumableUploads:
    """The uploads in progress under ``folder``: created, appended to, taken, expired."""

    def __init__(
        self, folder: Path, expiry_s: float, clock: Clock, idle_timeout_s: float = IDLE_TIMEOUT_S
    ) -> None:
        self.folder = folder
        self.expiry_s = expiry_s
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._digests: dict[str, tuple[int, Any]] = {}  # upload id -> (offset, running sha256)
        self._writing: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="upload")

    def _part(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    def _sidecar(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.json"

    def create(
        self, owner_id: int, kind: UploadKind, filename: str, length: int, metadata: str
    ) -> UploadRecord:
        """A new, empty upload (blocking file work: call it from a thread)."""
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        record = UploadRecord(
            uuid.uuid4().hex, owner_id, kind, filename, length, 0, metadata, now, now
        )
        if length == 0:
            record = replace(record, sha256=hashlib.sha256().hexdigest())
        self._save(record)  # the record first: a part file without one is debris (see sweep)
        self._part(record.id).open("xb").close()
        return record

    def find(self, upload_id: str, user_id: int, is_admin: bool) -> UploadRecord:
        """The upload, if this user may touch it (its owner, or an admin) and it has not expired.

        Raises:
            NotFound: no such upload, someone else's, or expired (then it is deleted).
        """
        record = self._load(upload_id) if UPLOAD_ID.match(upload_id) else None
        if record is None or (record.owner_id != user_id and not is_admin):
            raise NotFound(
                f"no upload {upload_id} (uploads expire {self.expiry_s:g} s after their last bytes)"
            )
        if upload_id not in self._writing and is_expired(record, self._clock(), self.expiry_s):
            self._remove(upload_id)
            raise NotFound(f"upload {upload_id} expired and was deleted: start a new one")
        return record

    async def append(
        self, record: UploadRecord, offset: int, chunks: AsyncIterable[bytes], declared: int | None
    ) -> UploadRecord:
        """Stream ``chunks`` to the upload from ``offset``; fsync, then record the new offset.

        Bytes that arrived before the stream broke off (a dropped connection) or stalled for
        ``idle_timeout_s`` are kept and recorded, so that the client can resume from them; past
        the length or past the disk's reserve (``InsufficientStorage`` from the stream), nothing
        of this request is kept.

        Raises:
            OffsetMismatch, PayloadTooLarge, UploadBusy, UploadStalled; and whatever the stream
            raised.
        """
        check_append(record, offset, declared)
        if record.id in self._writing:
            raise UploadBusy(f"upload {record.id} is being written by another request")
        self._writing.add(record.id)
        try:
            writer = await asyncio.wrap_future(self._executor.submit(self._writer, record))
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.idle_timeout_s) as idle:
                    async for chunk in chunks:
                        idle.reschedule(loop.time() + self.idle_timeout_s)
                        writer.add(chunk)
                        if writer.should_flush:
                            await writer.flush()
            except TimeoutError:  # before OSError, of which it is a kind
                self._keep(writer, record)
                raise UploadStalled(
                    f"no bytes arrived for {self.idle_timeout_s:g} s; what came is kept: "
                    "HEAD the upload for its offset and resume"
                ) from None
            except (PayloadTooLarge, InsufficientStorage, OSError):
                writer.abandon()  # what it wrote lies past the recorded offset: cut next time
                raise
            except BaseException:
                self._keep(writer, record)  # on the event loop: it may be shutting down
                raise
            try:
                return await asyncio.wrap_future(
                    self._executor.submit(self._commit, writer, record)
                )
            except OSError:
                writer.abandon()
                raise
        finally:
            self._writing.discard(record.id)

    def take(self, record: UploadRecord, into: Path) -> Path:
        """Move a finished upload's file into ``into`` (for the model or dataset made of it)."""
        if record.id in self._writing:
            raise UploadBusy(f"upload {record.id} is being written by another request")
        into.mkdir(parents=True, exist_ok=True)
        handle, target = tempfile.mkstemp(dir=into, suffix=".upload")
        os.close(handle)
        part = self._part(record.id)
        os.truncate(part, record.length)  # anything past it was never acknowledged
        part.replace(target)
        self._remove(record.id)
        return Path(target)

    def delete(self, record: UploadRecord) -> None:
        if record.id in self._writing:
            raise UploadBusy(f"upload {record.id} is being written by another request")
        self._remove(record.id)

    def sweep(self) -> list[str]:
        """Delete the uploads that received nothing for ``expiry_s``, and debris; their ids."""
        if not self.folder.is_dir():
            return []
        now, removed = self._clock(), []
        for sidecar in self.folder.glob("*.json"):
            upload_id = sidecar.stem
            if upload_id in self._writing:
                continue
            record = self._load(upload_id)
            if record is None or is_expired(record, now, self.expiry_s):
                self._remove(upload_id)
                removed.append(upload_id)
        for part in self.folder.glob("*.part"):
            if part.stem not in self._writing and not self._sidecar(part.stem).exists():
                part.unlink(missing_ok=True)
        return removed

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    # --- files ------------------------------------------------------------------------------

    def _load(self, upload_id: str) -> UploadRecord | None:
        try:
            stored = json.loads(self._sidecar(upload_id).read_text(encoding="utf-8"))
            record = UploadRecord(
                **{
                    **stored,
                    "created_at": from_iso(stored["created_at"]),
                    "updated_at": from_iso(stored["updated_at"]),
                }
            )
            on_disk = self._part(upload_id).stat().st_size
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if on_disk < record.offset:  # bytes lost under the record: resend them
            record = replace(record, offset=on_disk, sha256=None)
        return record

    def _save(self, record: UploadRecord) -> None:
        stored = {
            **asdict(record),
            "created_at": to_iso(record.created_at),
            "updated_at": to_iso(record.updated_at),
        }
        temporary = self.folder / f"{record.id}.json.tmp"
        with temporary.open("w", encoding="utf-8") as sink:
            json.dump(stored, sink)
            sink.flush()
            os.fsync(sink.fileno())
        temporary.replace(self._sidecar(record.id))

    def _remove(self, upload_id: str) -> None:
        self._sidecar(upload_id).unlink(missing_ok=True)  # the record first (see sweep)
        self._part(upload_id).unlink(missing_ok=True)
        (self.folder / f"{upload_id}.json.tmp").unlink(missing_ok=True)
        self._digests.pop(upload_id, None)

    def _writer(self, record: UploadRecord) -> _PartWriter:
        cached = self._digests.pop(record.id, None)
        part = self._part(record.id)
        if cached is not None and cached[0] == record.offset:
            digest = cached[1]
        else:
            digest = _hash_prefix(part, record.offset)
        return _PartWriter(part, record.offset, record.length, digest, self._executor)

    def _keep(self, writer: _PartWriter, record: UploadRecord) -> None:
        try:
            self._commit(writer, record)
        except OSError:
            writer.abandon()

    def _commit(self, writer: _PartWriter, record: UploadRecord) -> UploadRecord:
        offset, digest = writer.finish()
        done = offset == record.length
        updated = replace(
            record,
            offset=offset,
            updated_at=self._clock(),
            sha256=digest.hexdigest() if done else None,
        )
        self._save(updated)
        self._digests[record.id] = (offset, digest)
        return updated


def _hash_prefix(part: Path, length: int) -> Any:
    digest = hashlib.sha256()
    with part.open("rb") as source:
        remaining = length
        while remaining > 0:
            block = source.read(min(_HASH_READ_BYTES, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


class _PartWriter:
    """One ``PATCH`` on its way to disk: each block of a few MiB is hashed on one worker thread
    and written on another while the next block arrives (one block in flight: memory stays
    flat). The hash is the slower of the two, so running them side by side is what pays."""

    def __init__(
        self, part: Path, start: int, limit: int, digest: Any, executor: ThreadPoolExecutor
    ) -> None:
        self._file = part.open("r+b")
        self._file.truncate(start)  # bytes past the recorded offset were never acknowledged
        self._file.seek(start)
        self._start = start
        self._limit = limit
        self._digest = digest
        self._executor = executor
        self._received = start
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._in_flight: list[Future[None]] = []

    def add(self, data: bytes) -> None:
        if self._received + len(data) > self._limit:
            raise PayloadTooLarge(f"the bytes sent pass the upload's length of {self._limit}")
        self._received += len(data)
        self._pending.append(data)
        self._pending_bytes += len(data)

    @property
    def should_flush(self) -> bool:
        return self._pending_bytes >= _FLUSH_BYTES

    async def flush(self) -> None:
        blocks = self._take_pending()
        for future in self._in_flight:
            await asyncio.wrap_future(future)
        self._in_flight = [
            self._executor.submit(self._hash, blocks),
            self._executor.submit(self._write, blocks),
        ]

    def finish(self) -> tuple[int, Any]:
        """Write what is left and fsync; the new offset and the running hash (blocking)."""
        for future in self._in_flight:
            future.result()
        blocks = self._take_pending()
        self._hash(blocks)
        self._write(blocks)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._received, self._digest

    def abandon(self) -> None:
        """Stop without recording anything: what was written lies past the recorded offset and
        is cut off now, its space given back (else the next writer cuts it) (blocking)."""
        for future in self._in_flight:
            with contextlib.suppress(Exception):
                future.result()
        with contextlib.suppress(OSError, ValueError):
            self._file.truncate(self._start)
        with contextlib.suppress(OSError, ValueError):
            self._file.close()

    def _take_pending(self) -> list[bytes]:
        blocks = self._pending
        self._pending, self._pending_bytes = [], 0
        return blocks

    def _hash(self, blocks: list[bytes]) -> None:
        for block in blocks:  # as they came off the socket, tens of KiB each: no joined copy
            self._digest.update(block)

    def _write(self, blocks: list[bytes]) -> None:
        start = self._file.tell()
        for block in blocks:
            self._file.write(block)
        if _START_WRITEBACK:
            # Start writing these pages to disk now, while the next block arrives, rather than
            # all at the fsync that ends the request (and keep a 10 GB upload out of the cache).
            self._file.flush()
            os.posix_fadvise(self._file.fileno(), start, 0, os.POSIX_FADV_DONTNEED)
