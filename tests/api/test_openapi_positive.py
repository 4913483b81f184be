"""A client generated from the OpenAPI document sends requests the server accepts.

Bodies valid by the document's schemas (schemathesis, positive mode) for creating users, models
and datasets must not be refused as invalid: every constraint the server checks is in the
schema. Models and datasets are made of real finished resumable uploads (the generated-client
path; a multipart part's file name cannot be described by a schema).
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.testclient import TestClient

from cvplatform.schemas import PASSWORD_MAX_BYTES
from serve_apps.api.app import create_app
from tests.api_harness import ADMIN_PASSWORD, in_process_platform

EXAMPLES = 40
TUS = {"Tus-Resumable": "1.0.0"}
ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256))


def _zip_of_class_folders() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/1.png", b"\x89PNG not decoded until validation")
    return buffer.getvalue()


FILES = {
    "model": ("m.onnx", ONNX_BYTES),
    "dataset": ("d.zip", _zip_of_class_folders()),
    "dataset_metadata": ("labels.csv", b"path,label\ncats/1.png,cat\n"),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with (
        in_process_platform(tmp_path_factory.mktemp("positive") / "data") as running,
        TestClient(create_app(running.state)) as http,
    ):
        answer = http.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield http


@pytest.fixture(scope="module")
def api_schema(client: TestClient) -> OpenApiSchema:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)


def _finished_upload(client: TestClient, kind: str) -> str:
    filename, content = FILES[kind]
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"filename": filename, "kind": kind}.items()
    )
    created = client.post(
        "/api/v1/uploads",
        headers={**TUS, "Upload-Length": str(len(content)), "Upload-Metadata": metadata},
    )
    assert created.status_code == 201, created.text
    sent = client.patch(
        created.headers["location"],
        content=content,
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.text
    upload_id: str = created.json()["id"]
    return upload_id


def _operation(api_schema: OpenApiSchema, path: str) -> Any:
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "POST" and operation.path == path:
            return operation
    raise AssertionError(f"no POST {path} in the document")


def _accepted(api_schema: OpenApiSchema, path: str, client: TestClient, prepare: Any) -> list[str]:
    """Statuses refused, with the body that was refused, over generated valid JSON bodies."""
    refused: list[str] = []
    strategy = _operation(api_schema, path).as_strategy(generation_mode=GenerationMode.POSITIVE)

    @given(case=strategy.filter(lambda case: case.media_type == "application/json"))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def send(case: schemathesis.Case) -> None:
        body = prepare(dict(case.body))
        if body is None:
            return
        answer = client.post(path, json=body)
        if answer.status_code not in (201, 202, 409):
            refused.append(f"{answer.status_code} {answer.text[:300]} for {body!r}")

    send()
    return refused


def test_generated_users_are_accepted(api_schema: OpenApiSchema, client: TestClient) -> None:
    def prepare(body: dict[str, Any]) -> dict[str, Any] | None:
        # JSON Schema counts characters, bcrypt bytes: the one limit the schema can only describe.
        if len(body["password"].encode()) > PASSWORD_MAX_BYTES:
            return None
        return body

    assert _accepted(api_schema, "/api/v1/users", client, prepare) == []


def test_generated_models_are_accepted(api_schema: OpenApiSchema, client: TestClient) -> None:
    def prepare(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "upload_id": _finished_upload(client, "model")}

    assert _accepted(api_schema, "/api/v1/models", client, prepare) == []


def test_generated_datasets_are_accepted(api_schema: OpenApiSchema, client: TestClient) -> None:
    def prepare(body: dict[str, Any]) -> dict[str, Any]:
        body["upload_id"] = _finished_upload(client, "dataset")
        if body.get("metadata_upload_id") is not None:
            body["metadata_upload_id"] = _finished_upload(client, "dataset_metadata")
        return body

    assert _accepted(api_schema, "/api/v1/datasets", client, prepare) == []
