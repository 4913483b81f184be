"""Models and datasets made of finished resumable uploads: an unfinished one makes nothing, bad
fields leave the upload in place, and a dataset comes of an archive and a table."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from cvplatform.errors import InvalidInput, UploadIncomplete
from tests.api.tus_kit import (
    ONNX_BYTES,
    created_url,
    head,
    model_from,
    patch,
    resumable_files,
    uploaded,
)
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def test_an_unfinished_upload_makes_nothing(api: InProcessApi, engineer: Caller) -> None:
    url = await created_url(api, engineer, ONNX_BYTES)
    await patch(api, engineer, url, 0, ONNX_BYTES[:100])
    answer = await model_from(api, engineer, url.rsplit("/", 1)[-1])
    assert answer.status_code == 409
    assert f"100 of {len(ONNX_BYTES)} bytes" in error_of(answer, UploadIncomplete)["message"]
    assert (await head(api, engineer, url)).headers["upload-offset"] == "100"
    assert api.background.submitted == []


async def test_invalid_fields_or_kind_leave_the_upload_in_place(
    api: InProcessApi, engineer: Caller
) -> None:
    upload_id = await uploaded(api, engineer, ONNX_BYTES)
    invalid = await model_from(api, engineer, upload_id, task_type="segmentation")
    assert invalid.status_code == 422
    assert error_of(invalid)["code"] == "validation_error"
    not_json = await api.http.post(
        "/api/v1/models",
        content=b"{",
        headers={**engineer.headers, "Content-Type": "application/json"},
    )
    assert error_of(not_json)["code"] == "malformed_json"
    as_dataset = await api.http.post(
        "/api/v1/datasets",
        json={"upload_id": upload_id, "name": unique("d"), "task_type": "classification"},
        headers=engineer.headers,
    )
    assert as_dataset.status_code == 422
    assert "created for a model" in error_of(as_dataset, InvalidInput)["message"]
    assert (await model_from(api, engineer, upload_id)).status_code == 202


async def test_a_dataset_from_an_archive_and_a_table(api: InProcessApi, engineer: Caller) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/1.png", b"not really a png")
    table = b"path,label\ncat/1.png,cat\n"
    archive_id = await uploaded(
        api, engineer, buffer.getvalue(), filename="pets.zip", kind="dataset"
    )
    table_id = await uploaded(api, engineer, table, filename="labels.csv", kind="dataset_metadata")
    answer = await api.http.post(
        "/api/v1/datasets",
        json={
            "upload_id": archive_id,
            "metadata_upload_id": table_id,
            "name": unique("pets"),
            "task_type": "classification",
        },
        headers=engineer.headers,
    )
    assert answer.status_code == 202, answer.text
    dataset_id = answer.json()["id"]
    assert api.background.submitted == [("validate_dataset", dataset_id)]
    dataset = (await api.http.get(answer.json()["url"], headers=engineer.headers)).json()
    source = dataset["source"]
    assert (source["filename"], source["sha256"], source["size_bytes"]) == (
        "pets.zip",
        hashlib.sha256(buffer.getvalue()).hexdigest(),
        len(buffer.getvalue()),
    )
    folder = api.settings.artifacts_dir / "datasets" / dataset_id
    assert sorted(path.name for path in folder.iterdir()) == ["metadata.csv", "upload.zip"]
    assert resumable_files(api) == []
