"""Resumable uploads (tus 1.0.0 under /api/v1/uploads), in-process: create, HEAD, PATCH, the
protocol's refusals, who may touch an upload, expiry and termination. Models and datasets made of
finished uploads are test_resumable_to_resources.py; the SDK's side, over real HTTP with a dropped
connection, test_resumable_sdk.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cvplatform.errors import (
    InvalidInput,
    MalformedHeader,
    NotFound,
    OffsetMismatch,
    PayloadTooLarge,
    PermissionDenied,
    TusVersionUnsupported,
    UnsupportedMediaType,
)
from serve_apps.api.routes.datasets import MAX_METADATA_BYTES
from tests.api.tus_kit import (
    OFFSET_BYTES,
    ONNX_BYTES,
    TUS,
    create,
    created_url,
    head,
    metadata,
    model_from,
    patch,
    resumable_files,
)
from tests.api_harness import (
    MAX_DATASET_BYTES,
    MAX_MODEL_BYTES,
    Caller,
    InProcessApi,
    error_of,
    in_process_api,
)

pytestmark = pytest.mark.anyio


async def test_options_say_what_the_server_speaks(api: InProcessApi) -> None:
    answer = await api.http.options("/api/v1/uploads")
    assert answer.status_code == 204
    assert answer.headers["tus-version"] == "1.0.0"
    assert answer.headers["tus-resumable"] == "1.0.0"
    assert set(answer.headers["tus-extension"].split(",")) == {
        "creation",
        "expiration",
        "termination",
    }
    # The largest of any kind: here a dataset's metadata table.
    assert int(answer.headers["tus-max-size"]) == MAX_METADATA_BYTES


async def test_create_head_patch_then_a_model_like_a_multipart_one(
    api: InProcessApi, engineer: Caller
) -> None:
    created = await create(api, engineer, len(ONNX_BYTES))
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    upload = created.json()
    assert url == upload["url"] == f"/api/v1/uploads/{upload['id']}"
    assert (upload["offset"], upload["length"], upload["kind"]) == (0, len(ONNX_BYTES), "model")
    assert created.headers["tus-resumable"] == "1.0.0"
    assert "upload-expires" in created.headers

    half = len(ONNX_BYTES) // 2
    first = await patch(api, engineer, url, 0, ONNX_BYTES[:half])
    assert first.status_code == 204, first.text
    assert first.headers["upload-offset"] == str(half)
    state = await head(api, engineer, url)
    assert state.status_code == 200
    assert (state.headers["upload-offset"], state.headers["upload-length"]) == (
        str(half),
        str(len(ONNX_BYTES)),
    )
    assert state.headers["cache-control"] == "no-store"
    assert state.headers["upload-metadata"] == metadata(filename="tiny.onnx", kind="model")
    rest = await patch(api, engineer, url, half, ONNX_BYTES[half:])
    assert rest.headers["upload-offset"] == str(len(ONNX_BYTES))

    accepted = await model_from(api, engineer, upload["id"], description="resumed")
    assert accepted.status_code == 202, accepted.text
    model_id = accepted.json()["id"]
    assert api.background.submitted == [("convert_model", model_id)]
    model = (await api.http.get(accepted.json()["url"], headers=engineer.headers)).json()
    assert model["status"] == "uploaded"
    assert model["description"] == "resumed"
    assert model["created_by"] == engineer.user_id
    assert model["source"] == {
        "filename": "tiny.onnx",
        "format": "onnx",
        "sha256": hashlib.sha256(ONNX_BYTES).hexdigest(),
        "size_bytes": len(ONNX_BYTES),
    }
    stored = api.settings.artifacts_dir / "models" / model_id / "source.onnx"
    assert stored.read_bytes() == ONNX_BYTES
    # Taken: nothing is left behind, and the upload cannot make a second model.
    assert resumable_files(api) == []
    assert list(api.settings.staging_dir.glob("*.upload")) == []
    again = await model_from(api, engineer, upload["id"])
    assert again.status_code == 404
    error_of(again, NotFound)


async def test_the_hash_survives_a_restart_and_a_torn_write(
    api: InProcessApi, engineer: Caller
) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    upload_id = url.rsplit("/", 1)[-1]
    await patch(api, engineer, url, 0, ONNX_BYTES[:1000])
    # A restart forgets the running hashes; a crash mid-PATCH leaves bytes past the offset.
    api.state.uploads._digests.clear()
    with (api.settings.staging_dir / "resumable" / f"{upload_id}.part").open("ab") as part:
        part.write(b"never acknowledged")
    assert (await head(api, engineer, url)).headers["upload-offset"] == "1000"
    await patch(api, engineer, url, 1000, ONNX_BYTES[1000:])
    accepted = await model_from(api, engineer, upload_id)
    model = (await api.http.get(accepted.json()["url"], headers=engineer.headers)).json()
    assert model["source"]["sha256"] == hashlib.sha256(ONNX_BYTES).hexdigest()


async def test_a_patch_must_start_at_the_offset(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    await patch(api, engineer, url, 0, ONNX_BYTES[:10])
    for offset in (0, 11):
        answer = await patch(api, engineer, url, offset, ONNX_BYTES[offset : offset + 10])
        assert answer.status_code == 409
        assert "at offset 10" in error_of(answer, OffsetMismatch)["message"]
    for header in ("", "-1", "ten"):
        answer = await api.http.patch(
            url,
            content=b"x",
            headers={
                **engineer.headers,
                **TUS,
                "Upload-Offset": header,
                "Content-Type": OFFSET_BYTES,
            },
        )
        assert answer.status_code == 400
        assert error_of(answer, MalformedHeader)["code"] == "invalid_header"
    assert (await head(api, engineer, url)).headers["upload-offset"] == "10"


async def test_a_patch_must_be_raw_bytes(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    for content_type in ("application/octet-stream", "application/json", ""):
        answer = await patch(api, engineer, url, 0, ONNX_BYTES, content_type=content_type)
        assert answer.status_code == 415
        assert answer.headers["tus-resumable"] == "1.0.0"
        error_of(answer, UnsupportedMediaType)
    assert (await head(api, engineer, url)).headers["upload-offset"] == "0"


async def test_nothing_past_the_length_is_kept(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, b"0123456789")
    declared = await patch(api, engineer, url, 0, b"0123456789+")
    assert declared.status_code == 413
    error_of(declared, PayloadTooLarge)

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: caught as it arrives
        yield b"01234"
        yield b"56789+"

    undeclared = await patch(api, engineer, url, 0, streamed())
    assert undeclared.status_code == 413
    error_of(undeclared, PayloadTooLarge)
    assert (await head(api, engineer, url)).headers["upload-offset"] == "0"
    assert (await patch(api, engineer, url, 0, b"0123456789")).status_code == 204


async def test_creation_applies_each_kinds_limit_and_name_check(
    api: InProcessApi, engineer: Caller
) -> None:
    too_large = await create(api, engineer, MAX_MODEL_BYTES + 1)
    assert too_large.status_code == 413
    assert str(MAX_MODEL_BYTES) in error_of(too_large, PayloadTooLarge)["message"]
    as_dataset = await create(api, engineer, MAX_DATASET_BYTES, "big.zip", "dataset")
    assert as_dataset.status_code == 201
    assert (
        await create(api, engineer, MAX_DATASET_BYTES + 1, "big.zip", "dataset")
    ).status_code == 413
    for filename, kind in [
        ("../escape.onnx", "model"),
        ("model.exe", "model"),
        ("data.tar", "dataset"),
        ("labels.txt", "dataset_metadata"),
        ("tiny.onnx", "report"),
    ]:
        refused = await create(api, engineer, 10, filename, kind)
        assert refused.status_code == 422, (filename, kind, refused.text)
        error_of(refused, InvalidInput)
    for headers in (
        {"Upload-Length": ""},
        {"Upload-Length": "1e3"},
        {"Upload-Metadata": "filename not-base64!"},
        {"Upload-Metadata": "filename"},
    ):
        malformed = await create(api, engineer, 10, **headers)
        assert malformed.status_code in (400, 422), (headers, malformed.text)
    assert len(resumable_files(api)) == 2  # the dataset upload's record and part file


async def test_every_request_says_the_protocol_version(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    without = {**engineer.headers}
    for answer in (
        await api.http.post("/api/v1/uploads", headers={**without, "Upload-Length": "1"}),
        await api.http.head(url, headers=without),
        await api.http.patch(
            url,
            content=b"x",
            headers={**without, "Upload-Offset": "0", "Content-Type": OFFSET_BYTES},
        ),
        await api.http.patch(
            url,
            content=b"x",
            headers={
                **without,
                "Tus-Resumable": "0.2.2",
                "Upload-Offset": "0",
                "Content-Type": OFFSET_BYTES,
            },
        ),
        await api.http.delete(url, headers=without),
    ):
        assert answer.status_code == 412, answer.request
        assert answer.headers["tus-version"] == "1.0.0"
        assert answer.headers["tus-resumable"] == "1.0.0"
        if answer.request.method != "HEAD":
            error_of(answer, TusVersionUnsupported)
    assert (await head(api, engineer, url)).headers["upload-offset"] == "0"


async def test_only_the_owner_or_an_admin_touches_an_upload(
    api: InProcessApi, engineer: Caller, admin: Caller
) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    upload_id = url.rsplit("/", 1)[-1]
    other = await api.new_user("engineer")
    assert (await head(api, other, url)).status_code == 404
    answer = await patch(api, other, url, 0, ONNX_BYTES)
    assert answer.status_code == 404
    error_of(answer, NotFound)
    assert (await api.http.delete(url, headers={**other.headers, **TUS})).status_code == 404
    assert (await head(api, engineer, url)).headers["upload-offset"] == "0"
    await patch(api, engineer, url, 0, ONNX_BYTES)
    assert (await model_from(api, other, upload_id)).status_code == 404
    assert (await head(api, admin, url)).status_code == 200
    accepted = await model_from(api, admin, upload_id)
    assert accepted.status_code == 202, accepted.text


async def test_a_viewer_cannot_upload(api: InProcessApi, viewer: Caller) -> None:
    answer = await create(api, viewer, 10)
    assert answer.status_code == 403
    error_of(answer, PermissionDenied)
    assert answer.headers["tus-resumable"] == "1.0.0"
    assert resumable_files(api) == []


async def test_bad_upload_ids_are_not_found(api: InProcessApi, engineer: Caller) -> None:
    for upload_id in ("not-an-id", "0" * 31 + "g", "%2e%2e", "0" * 32):
        answer = await head(api, engineer, f"/api/v1/uploads/{upload_id}")
        assert answer.status_code == 404, upload_id
    answer = await model_from(api, engineer, "0" * 32)
    assert answer.status_code == 404
    error_of(answer, NotFound)
    for upload_id in ("../../cvp.db", "", "0" * 31 + "g"):  # not an id at all: the schema says
        answer = await model_from(api, engineer, upload_id)
        assert answer.status_code == 422, upload_id
        assert answer.json()["error"]["fields"][0]["location"] == "body.upload_id"


async def test_an_abandoned_upload_expires(tmp_path: Path) -> None:
    # Shorter than a login's lifetime, so that the clock can pass it with the user logged in.
    expiry_s = 600
    async with in_process_api(tmp_path / "data", upload_expiry_s=expiry_s) as api:
        await _expire(api, await api.new_user("engineer"), expiry_s)


async def _expire(api: InProcessApi, engineer: Caller, expiry_s: float) -> None:
    abandoned = await created_url(api, engineer, ONNX_BYTES)
    await patch(api, engineer, abandoned, 0, ONNX_BYTES[:100])
    api.clock.advance(expiry_s / 2)
    active = await created_url(api, engineer, ONNX_BYTES)
    api.clock.advance(expiry_s / 2 + 1)
    answer = await patch(api, engineer, active, 0, ONNX_BYTES[:100])  # keeps it alive
    assert answer.status_code == 204
    await created_url(api, engineer, ONNX_BYTES)  # creation sweeps
    abandoned_id, active_id = abandoned.rsplit("/", 1)[-1], active.rsplit("/", 1)[-1]
    files = resumable_files(api)
    assert not any(name.startswith(abandoned_id) for name in files)
    assert f"{active_id}.part" in files
    assert (await head(api, engineer, abandoned)).status_code == 404
    # One past its time is gone when next touched, swept or not.
    api.clock.advance(expiry_s)
    assert (await head(api, engineer, active)).status_code == 404
    assert not any(name.startswith(active_id) for name in resumable_files(api))


async def test_termination_deletes_the_bytes(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    await patch(api, engineer, url, 0, ONNX_BYTES[:100])
    answer = await api.http.delete(url, headers={**engineer.headers, **TUS})
    assert answer.status_code == 204
    assert resumable_files(api) == []
    assert (await head(api, engineer, url)).status_code == 404
