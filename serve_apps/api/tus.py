"""The tus 1.0.0 resumable upload protocol's decisions, as pure functions: its headers, an upload's
record, when a ``PATCH`` may append, when an upload has expired or is finished.

``serve_apps.api.resumable`` keeps the uploads on disk; ``routes/uploads.py`` speaks HTTP.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import get_args

from cvplatform.errors import (
    InvalidInput,
    MalformedHeader,
    OffsetMismatch,
    PayloadTooLarge,
    UploadIncomplete,
)
from cvplatform.schemas import UPLOAD_ID_PATTERN, UploadKind

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,expiration,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
UPLOAD_KINDS: tuple[UploadKind, ...] = get_args(UploadKind)
UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)

_DECIMAL = re.compile(r"^[0-9]{1,20}$")
_METADATA_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")  # printable ASCII but space, comma


@dataclass(frozen=True)
class UploadRecord:
    """What ``<id>.json`` holds: who may touch the upload, what it becomes, how far it has come."""

    id: str
    owner_id: int
    kind: UploadKind
    filename: str
    length: int
    offset: int
    metadata: str  # the Upload-Metadata header as it was sent; HEAD gives it back
    created_at: datetime
    updated_at: datetime
    sha256: str | None = None

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    def expires_at(self, expiry_s: float) -> datetime:
        return self.updated_at + timedelta(seconds=expiry_s)


def parse_decimal(value: str | None, header: str) -> int:
    """A header that carries a non-negative byte count (``Upload-Length``, ``Upload-Offset``)."""
    if value is None:
        raise MalformedHeader(f"send the {header} header (a byte count)")
    if not _DECIMAL.match(value.strip()):
        raise MalformedHeader(
            f"{header} must be a non-negative whole number of bytes, not {value!r}"
        )
    return int(value)


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (a value may be absent)."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        if not item.strip():
            continue
        key, _, encoded = item.strip().partition(" ")
        if not _METADATA_KEY.match(key) or key in pairs:
            raise MalformedHeader(f"Upload-Metadata: {key!r} is not a valid, unique key")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError as error:  # binascii.Error, UnicodeDecodeError, non-ASCII text
            raise MalformedHeader(
                f"Upload-Metadata: the value of {key!r} is not base64-encoded UTF-8"
            ) from error
    return pairs


def upload_kind(metadata: dict[str, str]) -> UploadKind:
    kind = metadata.get("kind")
    for known in UPLOAD_KINDS:
        if kind == known:
            return known
    raise InvalidInput(
        f"Upload-Metadata: give kind, one of {', '.join(UPLOAD_KINDS)} (base64-encoded), "
        f"not {kind!r}"
    )


def is_expired(record: UploadRecord, now: datetime, expiry_s: float) -> bool:
    return now >= record.expires_at(expiry_s)


def http_date(moment: datetime) -> str:
    """``Upload-Expires`` is an HTTP date (RFC 9110)."""
    return format_datetime(moment, usegmt=True)


def check_append(record: UploadRecord, offset: int, declared_bytes: int | None) -> None:
    """Whether a ``PATCH`` of ``declared_bytes`` (None: unknown) may start at ``offset``."""
    if offset != record.offset:
        raise OffsetMismatch(
            f"upload {record.id} is at offset {record.offset}, not {offset}: "
            "HEAD it for the offset and send from there"
        )
    if declared_bytes is not None and offset + declared_bytes > record.length:
        raise PayloadTooLarge(
            f"{declared_bytes} bytes from offset {offset} pass the upload's length of "
            f"{record.length} bytes"
        )


def check_finished(record: UploadRecord, kind: UploadKind) -> None:
    """Whether a ``kind`` may be created from this upload now."""
    if record.kind != kind:
        raise InvalidInput(f"upload {record.id} was created for a {record.kind}, not a {kind}")
    if not record.complete:
        raise UploadIncomplete(
            f"upload {record.id} has {record.offset} of {record.length} bytes: send the rest "
            "(PATCH from the offset that HEAD gives) before creating from it"
        )
