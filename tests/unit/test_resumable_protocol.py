"""The resumable upload protocol's decisions as plain functions, and its files without HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cvplatform.errors import (
    InvalidInput,
    MalformedHeader,
    OffsetMismatch,
    PayloadTooLarge,
    UploadIncomplete,
)
from serve_apps.api.resumable import ResumableUploads
from serve_apps.api.tus import (
    UploadRecord,
    check_append,
    check_finished,
    http_date,
    is_expired,
    parse_decimal,
    parse_metadata,
    upload_kind,
)

START = datetime(2026, 12, 1, tzinfo=UTC)


def record(offset: int = 0, length: int = 10, kind: str = "model") -> UploadRecord:
    return UploadRecord("0" * 32, 1, kind, "tiny.onnx", length, offset, "", START, START)  # type: ignore[arg-type]


def test_metadata_pairs_are_base64_values() -> None:
    header = "filename dGlueS5vbm54,kind bW9kZWw=, is_draft"
    assert parse_metadata(header) == {"filename": "tiny.onnx", "kind": "model", "is_draft": ""}
    assert parse_metadata(None) == parse_metadata("") == {}
    assert parse_metadata("name 4pyTLm9ubng=") == {"name": "✓.onnx"}


@pytest.mark.parametrize(
    "header",
    [
        "filename a,filename b",
        "filename not base64",
        "filename ===",
        "fïlename YQ==",
        "k 2P8=",
        "x ä",
    ],
)
def test_malformed_metadata_is_refused(header: str) -> None:
    with pytest.raises(MalformedHeader):
        parse_metadata(header)


def test_byte_counts_are_plain_decimals() -> None:
    assert parse_decimal("0", "Upload-Length") == 0
    assert parse_decimal(" 1024 ", "Upload-Length") == 1024
    for value in (None, "", "-1", "1.5", "1e3", "0x10", "٣", "1" * 21):
        with pytest.raises(MalformedHeader):
            parse_decimal(value, "Upload-Offset")


def test_kinds() -> None:
    assert upload_kind({"kind": "dataset_metadata"}) == "dataset_metadata"
    for metadata in ({}, {"kind": "report"}, {"kind": "Model"}):
        with pytest.raises(InvalidInput):
            upload_kind(metadata)


def test_a_patch_starts_at_the_offset_and_stays_within_the_length() -> None:
    check_append(record(offset=4), 4, 6)
    check_append(record(offset=4), 4, None)
    with pytest.raises(OffsetMismatch, match="at offset 4, not 3"):
        check_append(record(offset=4), 3, 1)
    with pytest.raises(PayloadTooLarge):
        check_append(record(offset=4), 4, 7)


def test_expiry_counts_from_the_last_bytes() -> None:
    assert not is_expired(record(), START + timedelta(seconds=59), 60)
    assert is_expired(record(), START + timedelta(seconds=60), 60)
    assert http_date(record().expires_at(60)) == "Tue, 01 Dec 2026 00:01:00 GMT"


def test_only_a_complete_upload_of_the_right_kind_is_finished() -> None:
    check_finished(record(offset=10), "model")
    with pytest.raises(UploadIncomplete, match="has 9 of 10 bytes"):
        check_finished(record(offset=9), "model")
    with pytest.raises(InvalidInput, match="created for a model, not a dataset"):
        check_finished(record(offset=10), "dataset")


async def _chunks(*blocks: bytes) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def test_appends_hash_and_take_on_disk(tmp_path: Path) -> None:
    uploads = ResumableUploads(tmp_path / "uploads", 60, lambda: START)
    content = bytes(range(256)) * 100
    try:
        created = uploads.create(7, "model", "tiny.onnx", len(content), "")
        half = asyncio.run(uploads.append(created, 0, _chunks(content[:1000]), None))
        assert (half.offset, half.sha256) == (1000, None)
        done = asyncio.run(uploads.append(half, 1000, _chunks(content[1000:]), None))
        assert done.sha256 == hashlib.sha256(content).hexdigest()
        found = uploads.find(created.id, 7, is_admin=False)
        assert found.complete
        taken = uploads.take(found, tmp_path / "staging")
        assert taken.read_bytes() == content
        assert list((tmp_path / "uploads").iterdir()) == []
    finally:
        uploads.close()


def test_lost_bytes_are_asked_for_again_and_debris_swept(tmp_path: Path) -> None:
    now = [START]
    uploads = ResumableUploads(tmp_path, 60, lambda: now[0])
    try:
        created = uploads.create(7, "model", "tiny.onnx", 10, "")
        asyncio.run(uploads.append(created, 0, _chunks(b"0123456789"), None))
        (tmp_path / f"{created.id}.part").write_bytes(b"0123")  # the disk lost the tail
        assert uploads.find(created.id, 7, is_admin=False).offset == 4
        (tmp_path / ("f" * 32 + ".part")).write_bytes(b"no record")
        now[0] += timedelta(seconds=61)
        assert uploads.sweep() == [created.id]
        assert list(tmp_path.iterdir()) == []
    finally:
        uploads.close()
