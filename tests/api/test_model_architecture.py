"""The ``architecture`` of an upload is checked when the file arrives: a path to a server file is
a 422 for any upload (the schema's pattern says so), and a state dict's must be a builder the
platform knows for its task type. Nothing is kept of a refused upload."""

from __future__ import annotations

from typing import Any

import pytest

from actors.models import architectures
from cvplatform.errors import InvalidModel
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio

# The upload does not look inside the weights: the conversion does, in the background.
STATE_DICT_BYTES = b"PK\x03\x04" + bytes(range(256))
ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256))


async def _nothing_kept(api: InProcessApi, caller: Caller, staged: set[Any]) -> None:
    models = await api.http.get("/api/v1/models", headers=caller.headers)
    assert models.json()["total"] == 0
    assert set(api.settings.staging_dir.glob("*")) == staged
    stored = api.settings.artifacts_dir / "models"
    assert not stored.exists() or not any(stored.iterdir())
    assert api.background.submitted == []


@pytest.mark.parametrize("filename", ["weights.pth", "model.onnx"])
@pytest.mark.parametrize(
    "architecture",
    [
        "/srv/cvp/.cvp-data/jwt-secret",
        "../../../jwt-secret.yaml",
        "configs/yolov8n.yaml",
        "..\\evil.yaml",
        "~root/x.yaml",
        "yolov8n..yaml",
    ],
)
async def test_a_path_as_architecture_is_refused_at_upload(
    api: InProcessApi, engineer: Caller, architecture: str, filename: str
) -> None:
    staged = set(api.settings.staging_dir.glob("*"))
    content = STATE_DICT_BYTES if filename.endswith(".pth") else ONNX_BYTES
    answer = await api.upload_model(
        engineer.headers, content, filename, unique("arch"), "detection", architecture=architecture
    )
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "validation_error"
    [field] = error["fields"]
    assert field["location"] == "form.architecture"
    assert "is a path or not a name (files on the server are never read)" in field["message"]
    await _nothing_kept(api, engineer, staged)


@pytest.mark.parametrize(
    ("architecture", "task_type", "message"),
    [
        ("resnet9000", "classification", "unknown classification architecture 'resnet9000'"),
        ("ssd300_vgg16", "classification", "a builder of the other task type"),
        ("yolov8n.yaml", "classification", "builds a detection model, not a classification one"),
        ("yolov8n-pose.yaml", "detection", "unknown ultralytics model yaml 'yolov8n-pose.yaml'"),
    ],
)
async def test_a_state_dicts_unknown_architecture_is_refused_at_upload(
    api: InProcessApi, engineer: Caller, architecture: str, task_type: str, message: str
) -> None:
    staged = set(api.settings.staging_dir.glob("*"))
    answer = await api.upload_model(
        engineer.headers,
        STATE_DICT_BYTES,
        "weights.pth",
        unique("arch"),
        task_type,
        architecture=architecture,
    )
    assert answer.status_code == 422, answer.text
    error = error_of(answer, InvalidModel)
    assert error["code"] == "invalid_model" and message in error["message"]
    await _nothing_kept(api, engineer, staged)


@pytest.mark.parametrize(
    ("architecture", "task_type"),
    [("mobilenet_v3_small", "classification"), ("yolov8n.yaml", "detection")],
)
async def test_a_known_architecture_is_accepted(
    api: InProcessApi, engineer: Caller, architecture: str, task_type: str
) -> None:
    answer = await api.upload_model(
        engineer.headers,
        STATE_DICT_BYTES,
        "weights.pth",
        unique("arch"),
        task_type,
        architecture=architecture,
    )
    assert answer.status_code == 202, answer.text
    model = (await api.http.get(answer.json()["url"], headers=engineer.headers)).json()
    assert model["architecture"] == architecture


async def test_the_schema_tells_clients_what_an_architecture_looks_like(
    api: InProcessApi,
) -> None:
    document = (await api.http.get("/api/v1/openapi.json")).json()
    bodies = document["paths"]["/api/v1/models"]["post"]["requestBody"]["content"]
    for media_type in ("multipart/form-data", "application/json"):
        field = bodies[media_type]["schema"]["properties"]["architecture"]
        patterns = [field.get("pattern")] + [o.get("pattern") for o in field.get("anyOf", [])]
        assert architectures.NAME_PATTERN in patterns, media_type
