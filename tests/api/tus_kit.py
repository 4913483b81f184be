"""Speaking tus to the in-process API: the requests of a resumable upload, for the tests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.api_harness import Caller, InProcessApi
from tests.helpers import unique

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_BYTES = "application/offset+octet-stream"
# The upload does not look inside an .onnx file: the conversion does, in the background.
ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256)) * 40


def metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


async def create(
    api: InProcessApi,
    caller: Caller,
    length: int,
    filename: str = "tiny.onnx",
    kind: str = "model",
    **headers: str,
) -> httpx.Response:
    return await api.http.post(
        "/api/v1/uploads",
        headers={
            **caller.headers,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=filename, kind=kind),
            **headers,
        },
    )


async def created_url(api: InProcessApi, caller: Caller, content: bytes, **options: str) -> str:
    answer = await create(api, caller, len(content), **options)
    assert answer.status_code == 201, answer.text
    url: str = answer.headers["location"]
    return url


async def patch(
    api: InProcessApi,
    caller: Caller,
    url: str,
    offset: int,
    content: bytes | AsyncIterator[bytes],
    content_type: str = OFFSET_BYTES,
) -> httpx.Response:
    headers = {**caller.headers, **TUS, "Upload-Offset": str(offset), "Content-Type": content_type}
    return await api.http.patch(url, content=content, headers=headers)


async def head(api: InProcessApi, caller: Caller, url: str) -> httpx.Response:
    return await api.http.head(url, headers={**caller.headers, **TUS})


async def uploaded(api: InProcessApi, caller: Caller, content: bytes, **options: str) -> str:
    """A finished upload's id."""
    url = await created_url(api, caller, content, **options)
    answer = await patch(api, caller, url, 0, content)
    assert answer.status_code == 204, answer.text
    return url.rsplit("/", 1)[-1]


async def model_from(
    api: InProcessApi, caller: Caller, upload_id: str, **fields: Any
) -> httpx.Response:
    body = {"upload_id": upload_id, "name": unique("resumed"), "task_type": "classification"}
    return await api.http.post("/api/v1/models", json={**body, **fields}, headers=caller.headers)


def resumable_files(api: InProcessApi) -> list[str]:
    folder = api.settings.staging_dir / "resumable"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
