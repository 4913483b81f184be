"""Model uploads refused up front (bad names, empty, too large, bad form fields, a missing extra),
listing with filters and pages, and deleting a model whose conversion has not ended.

In-process the conversion is only recorded: what it finds in a file is tested with real Ray in
``tests/integration/test_models.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from cvplatform.errors import Conflict, InvalidInput, InvalidModel, MissingExtra, PayloadTooLarge
from tests.api_harness import MAX_MODEL_BYTES, Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
# The upload does not look inside an .onnx file: the conversion does, in the background.
ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256))


async def _model_count(api: InProcessApi, caller: Caller) -> int:
    answer = await api.http.get("/api/v1/models", params={"limit": 200}, headers=caller.headers)
    total: int = answer.json()["total"]
    return total


def _staged(api: InProcessApi) -> set[Path]:
    return set(api.settings.staging_dir.glob("*"))


async def test_an_accepted_upload_is_stored_and_its_conversion_submitted(
    api: InProcessApi, engineer: Caller
) -> None:
    answer = await api.upload_model(
        engineer.headers, ONNX_BYTES, "tiny.onnx", unique("tiny"), "classification"
    )
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "uploaded"
    assert api.background.submitted == [("convert_model", accepted["id"])]
    model = (await api.http.get(accepted["url"], headers=engineer.headers)).json()
    assert (model["status"], model["framework"], model["source"]["size_bytes"]) == (
        "uploaded",
        "onnx",
        len(ONNX_BYTES),
    )
    assert list((api.settings.artifacts_dir / "models" / accepted["id"]).iterdir())
    assert _staged(api) == set()


@pytest.mark.skipif(HAS_TENSORFLOW, reason="the tensorflow extra is installed here")
async def test_tensorflow_file_without_the_extra(api: InProcessApi, engineer: Caller) -> None:
    answer = await api.upload_model(
        engineer.headers,
        b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
        "model.h5",
        unique("tf"),
        "classification",
    )
    assert answer.status_code == 422
    error = error_of(answer, MissingExtra)
    assert error["code"] == "missing_extra"
    assert "cv-platform[tensorflow]" in error["message"]
    assert api.background.submitted == []


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("model.exe", "unsupported file type '.exe'"),
        ("model", "unsupported file type"),
        ("../../escape.onnx", "is a path"),
        ("/etc/cron.d/escape.onnx", "is a path"),
        ("..\\escape.onnx", "is a path"),
    ],
)
async def test_refused_file_names_leave_nothing(
    api: InProcessApi, engineer: Caller, filename: str, message: str
) -> None:
    before = await _model_count(api, engineer)
    staged = _staged(api)
    answer = await api.upload_model(
        engineer.headers, ONNX_BYTES, filename, unique("n"), "classification"
    )
    assert answer.status_code == 422
    error = error_of(answer, InvalidInput)
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    assert await _model_count(api, engineer) == before
    assert _staged(api) == staged
    assert not (api.settings.data_dir / "escape.onnx").exists()
    assert api.background.submitted == []


async def test_empty_file_is_refused_at_once(api: InProcessApi, engineer: Caller) -> None:
    answer = await api.upload_model(
        engineer.headers, b"", "empty.onnx", unique("empty"), "classification"
    )
    assert answer.status_code == 422
    error = error_of(answer, InvalidModel)
    assert error["code"] == "invalid_model"
    assert "empty" in error["message"]
    assert await _model_count(api, engineer) == 0


async def test_model_over_the_size_limit_is_413(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    big = tmp_path / "big.onnx"
    with big.open("wb") as sink:
        sink.truncate(MAX_MODEL_BYTES + 1)
    answer = await api.upload_model(
        engineer.headers, big, "big.onnx", unique("big"), "classification"
    )
    assert answer.status_code == 413
    assert error_of(answer, PayloadTooLarge)["code"] == "payload_too_large"
    assert await _model_count(api, engineer) == 0
    assert list(api.settings.staging_dir.glob("*.upload")) == []
    assert api.background.submitted == []


async def test_form_fields_are_validated(api: InProcessApi, engineer: Caller) -> None:
    answer = await api.upload_model(
        engineer.headers, ONNX_BYTES, "fields.onnx", "x", "segmentation", num_classes=-3
    )
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    locations = [field["location"] for field in answer.json()["error"]["fields"]]
    assert locations == ["form.task_type", "form.num_classes"]
    not_multipart = await api.http.post(
        "/api/v1/models", headers=engineer.headers, data={"name": "x"}
    )
    assert not_multipart.status_code == 422 and "multipart" in not_multipart.text
    # JSON names a finished resumable upload (tests/api/test_resumable_uploads.py).
    no_upload = await api.http.post("/api/v1/models", headers=engineer.headers, json={"name": "x"})
    locations = [field["location"] for field in error_of(no_upload)["fields"]]
    assert locations == ["body.task_type", "body.upload_id"]
    assert await _model_count(api, engineer) == 0


async def test_listing_filters_and_pages(api: InProcessApi, engineer: Caller) -> None:
    async def upload(filename: str, task_type: str, **fields: object) -> str:
        answer = await api.upload_model(
            engineer.headers, ONNX_BYTES, filename, unique("listed"), task_type, **fields
        )
        assert answer.status_code == 202, answer.text
        model_id: str = answer.json()["id"]
        return model_id

    ids = [await upload("listed.onnx", "classification") for _ in range(3)]
    detector = await upload("detector.onnx", "detection")
    state_dict = await upload("weights.pth", "classification", architecture="resnet18")

    async def listed(**params: Any) -> dict[str, Any]:
        answer = await api.http.get("/api/v1/models", params=params, headers=engineer.headers)
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page

    everything = await listed(limit=200)
    assert everything["total"] == 5
    assert {model["id"] for model in everything["items"]} == {*ids, detector, state_dict}
    first, second = await listed(limit=2, offset=0), await listed(limit=2, offset=2)
    assert first["total"] == second["total"] == everything["total"]
    assert len(first["items"]) == len(second["items"]) == 2
    assert {m["id"] for m in first["items"]}.isdisjoint({m["id"] for m in second["items"]})
    onnx_uploaded = await listed(framework="onnx", status="uploaded", limit=200)
    assert all(
        m["framework"] == "onnx" and m["status"] == "uploaded" for m in onnx_uploaded["items"]
    )
    assert {m["id"] for m in onnx_uploaded["items"]} == {*ids, detector}
    assert (await listed(status="ready", limit=200))["total"] == 0
    onnx_detectors = await listed(task_type="detection", framework="onnx", limit=200)
    assert [m["id"] for m in onnx_detectors["items"]] == [detector]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"limit": "many"}, "query.limit"),
        ({"status": "sleeping"}, "query.status"),
        ({"framework": "caffe"}, "query.framework"),
        ({"task_type": "segmentation"}, "query.task_type"),
    ],
)
async def test_bad_listing_parameters_are_422(
    api: InProcessApi, engineer: Caller, params: dict[str, str | int], location: str
) -> None:
    answer = await api.http.get("/api/v1/models", params=params, headers=engineer.headers)
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    assert [field["location"] for field in answer.json()["error"]["fields"]] == [location]


async def test_a_model_is_not_deleted_while_it_converts(
    api: InProcessApi, admin: Caller, engineer: Caller
) -> None:
    answer = await api.upload_model(
        engineer.headers, ONNX_BYTES, "doomed.onnx", unique("doomed"), "classification"
    )
    accepted = answer.json()
    refused = await api.http.delete(accepted["url"], headers=admin.headers)
    assert refused.status_code == 409
    error = error_of(refused, Conflict)
    assert error["code"] == "in_use" and "being converted" in error["message"]
    assert list((api.settings.artifacts_dir / "models" / accepted["id"]).iterdir())
    assert (await api.http.get(accepted["url"], headers=engineer.headers)).status_code == 200
