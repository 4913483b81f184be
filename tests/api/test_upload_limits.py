"""Bounded uploads: the multipart parser's caps (parts, header bytes per part), the free space an
upload must leave on the data disk (507), and an ``.h5`` told by its first bytes.

The disk is the environment: ``shutil.disk_usage`` is replaced by a disk of a given free space,
less what the data directory holds, so that it fills as the upload is written.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest

from cvplatform.config import MIB
from cvplatform.errors import InsufficientStorage, PayloadTooLarge
from tests.api.tus_kit import OFFSET_BYTES, TUS, create, created_url
from tests.api_harness import Caller, InProcessApi, error_of, in_process_api
from tests.helpers import unique

pytestmark = pytest.mark.anyio

BOUNDARY = "cvp-test-boundary"
ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256))
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
RESERVE_MB = 8


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


class SmallDisk:
    """A disk with ``free_bytes`` free before the data directory's files: what they take as
    they are written comes off it."""

    def __init__(self, data_dir: Path, free_bytes: int) -> None:
        self.data_dir = data_dir
        self.free_bytes = free_bytes

    def __call__(self, path: object) -> DiskUsage:
        used = sum(item.stat().st_size for item in self.data_dir.rglob("*") if item.is_file())
        free = max(0, self.free_bytes - used)
        return DiskUsage(total=self.free_bytes, used=used, free=free)


@pytest.fixture
async def roomy(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    """Uploads of several MiB, and a reserve of a few MiB (the harness's own limits are KiB)."""
    async with in_process_api(
        tmp_path / "data",
        max_model_bytes=64 * MIB,
        max_dataset_bytes=64 * MIB,
        disk_reserve_mb=RESERVE_MB,
    ) as harness:
        yield harness


def _small_disk(monkeypatch: pytest.MonkeyPatch, api: InProcessApi, free_mb: float) -> SmallDisk:
    disk = SmallDisk(api.settings.data_dir, int((RESERVE_MB + free_mb) * MIB))
    monkeypatch.setattr(shutil, "disk_usage", disk)
    return disk


def _part(name: str, value: bytes, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + value + b"\r\n"


def _multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _post_multipart(
    api: InProcessApi, caller: Caller, body: bytes | AsyncIterator[bytes], path: str
) -> tuple[int, dict[str, object]]:
    answer = await api.http.post(
        path,
        content=body,
        headers={
            **caller.headers,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    return answer.status_code, error_of(answer) if answer.status_code >= 400 else {}


def _nothing_stored(api: InProcessApi) -> bool:
    staged = [item for item in api.settings.staging_dir.rglob("*") if item.is_file()]
    models = api.settings.artifacts_dir / "models"
    datasets = api.settings.artifacts_dir / "datasets"
    kept = [item for folder in (models, datasets) if folder.exists() for item in folder.rglob("*")]
    return staged == [] and kept == []


async def _model_total(api: InProcessApi, caller: Caller) -> int:
    total: int = (await api.http.get("/api/v1/models", headers=caller.headers)).json()["total"]
    return total


# --- the multipart parser's caps ---------------------------------------------------------------


@pytest.mark.parametrize("file_first", [True, False])
async def test_a_thousand_multipart_fields_are_413_and_nothing_is_stored(
    api: InProcessApi, engineer: Caller, file_first: bool
) -> None:
    file_part = _part("file", ONNX_BYTES, filename="many.onnx")
    fields = [_part(f"field{index}", b"x") for index in range(1000)]
    named = [_part("name", unique("many").encode()), _part("task_type", b"classification")]
    parts = [file_part, *named, *fields] if file_first else [*named, *fields, file_part]
    status, error = await _post_multipart(api, engineer, _multipart(*parts), "/api/v1/models")
    assert status == 413
    assert error["code"] == "payload_too_large"
    assert f"more than {api.settings.max_multipart_fields} parts" in str(error["message"])
    assert _nothing_stored(api)
    assert await _model_total(api, engineer) == 0
    assert api.background.submitted == []


async def test_a_form_within_the_part_limit_is_taken(api: InProcessApi, engineer: Caller) -> None:
    allowed = api.settings.max_multipart_fields
    spare = [_part(f"unused{index}", b"") for index in range(allowed - 3)]
    body = _multipart(
        _part("file", ONNX_BYTES, filename="ok.onnx"),
        _part("name", unique("ok").encode()),
        _part("task_type", b"classification"),
        *spare,
    )
    status, _ = await _post_multipart(api, engineer, body, "/api/v1/models")
    assert status == 202


@pytest.mark.parametrize("where", ["header value", "file name", "many lines"])
async def test_a_one_mib_part_header_is_413_and_nothing_is_stored(
    api: InProcessApi, engineer: Caller, where: str
) -> None:
    padding = "a" * MIB
    if where == "header value":
        file_part = _part("file", ONNX_BYTES, "big.onnx", extra=f"X-Padding: {padding}\r\n")
    elif where == "file name":
        file_part = _part("file", ONNX_BYTES, filename=f"{padding}.onnx")
    else:  # each line under the limit, the part's headers together over it
        lines = "".join(f"X-Padding-{index}: {'a' * 3000}\r\n" for index in range(7))
        file_part = _part("file", ONNX_BYTES, "big.onnx", extra=lines)
    body = _multipart(
        _part("name", unique("hdr").encode()), _part("task_type", b"classification"), file_part
    )
    status, error = await _post_multipart(api, engineer, body, "/api/v1/models")
    assert status == 413
    assert error["code"] == "payload_too_large"
    assert f"limit of {api.settings.max_part_header_bytes} bytes" in str(error["message"])
    assert _nothing_stored(api)
    assert await _model_total(api, engineer) == 0


# --- the disk's reserve ------------------------------------------------------------------------


async def test_an_upload_that_would_eat_the_reserve_is_507_before_it_is_read(
    roomy: InProcessApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engineer = await roomy.new_user("engineer")
    model = tmp_path / "model.onnx"
    model.write_bytes(ONNX_BYTES + bytes(3 * MIB))
    _small_disk(monkeypatch, roomy, free_mb=2)
    answer = await roomy.upload_model(
        engineer.headers, model, "model.onnx", unique("full"), "classification"
    )
    assert answer.status_code == 507, answer.text
    error = error_of(answer, InsufficientStorage)
    assert error["code"] == "insufficient_storage"
    assert str(roomy.settings.data_dir) not in str(error["message"])
    assert _nothing_stored(roomy)
    assert await _model_total(roomy, engineer) == 0

    dataset = tmp_path / "images.zip"
    dataset.write_bytes(bytes(3 * MIB))
    answer = await roomy.upload_dataset(
        engineer.headers, dataset, "images.zip", unique("full"), "classification"
    )
    assert answer.status_code == 507, answer.text
    assert _nothing_stored(roomy)

    _small_disk(monkeypatch, roomy, free_mb=6)  # room for it, and the reserve kept
    answer = await roomy.upload_model(
        engineer.headers, model, "model.onnx", unique("fits"), "classification"
    )
    assert answer.status_code == 202, answer.text


async def _chunks(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        sent += size
        yield bytes(size)


async def _streamed_model(total: int) -> AsyncIterator[bytes]:
    head = _part("name", unique("stream").encode()) + _part("task_type", b"classification")
    yield head
    file_head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
    yield (file_head + 'filename="stream.onnx"\r\n\r\n').encode() + ONNX_BYTES
    async for chunk in _chunks(total):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_an_upload_without_a_length_is_507_as_it_grows(
    roomy: InProcessApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    engineer = await roomy.new_user("engineer")
    disk = _small_disk(monkeypatch, roomy, free_mb=6)
    status, error = await _post_multipart(
        roomy, engineer, _streamed_model(20 * MIB), "/api/v1/models"
    )
    assert status == 507, error
    assert error["code"] == "insufficient_storage"
    assert _nothing_stored(roomy)
    assert disk(roomy.settings.data_dir).free > RESERVE_MB * MIB  # the reserve stayed free
    assert await _model_total(roomy, engineer) == 0


async def test_a_resumable_upload_is_507_at_creation_and_as_it_grows(
    roomy: InProcessApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    engineer = await roomy.new_user("engineer")
    _small_disk(monkeypatch, roomy, free_mb=4)
    refused = await create(roomy, engineer, 5 * MIB)
    assert refused.status_code == 507, refused.text
    assert error_of(refused, InsufficientStorage)["code"] == "insufficient_storage"
    assert _nothing_stored(roomy)

    _small_disk(monkeypatch, roomy, free_mb=40)
    url = await created_url(roomy, engineer, bytes(30 * MIB))
    _small_disk(monkeypatch, roomy, free_mb=12)  # the disk filled meanwhile

    headers = {**engineer.headers, **TUS, "Content-Type": OFFSET_BYTES, "Upload-Offset": "0"}
    declared = await roomy.http.patch(url, headers=headers, content=bytes(30 * MIB))
    assert declared.status_code == 507, declared.text

    streamed = await roomy.http.patch(url, headers=headers, content=_chunks(30 * MIB))
    assert streamed.status_code == 507, streamed.text
    head = await roomy.http.head(url, headers={**engineer.headers, **TUS})
    assert head.headers["upload-offset"] == "0"  # nothing of the refused requests was kept
    part = next(roomy.settings.staging_dir.rglob("*.part"))
    assert part.stat().st_size == 0  # and the disk has its space back at once


# --- .h5 by its first bytes --------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TENSORFLOW, reason="an .h5 upload needs the tensorflow extra")
async def test_an_h5_upload_is_checked_by_its_signature(
    api: InProcessApi, engineer: Caller
) -> None:
    fake = await api.upload_model(
        engineer.headers, b"\x89HDF\r\n\x1a\n" + bytes(1024), "k.h5", unique("h5"), "detection"
    )
    assert fake.status_code == 202, fake.text
    not_hdf5 = await api.upload_model(
        engineer.headers, bytes(400 * 1024), "big.h5", unique("h5"), "detection"
    )
    assert not_hdf5.status_code == 422
    assert "not HDF5" in error_of(not_hdf5)["message"]


async def test_a_too_large_file_is_still_413_not_507(
    api: InProcessApi, engineer: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_disk(monkeypatch, api, free_mb=1000)
    answer = await api.upload_model(
        engineer.headers, bytes(api.settings.max_model_bytes + 1), "x.onnx", "x", "detection"
    )
    assert answer.status_code == 413
    assert error_of(answer, PayloadTooLarge)["code"] == "payload_too_large"
