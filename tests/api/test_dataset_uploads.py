"""Dataset uploads refused up front, listing with filters and pages, and deleting a dataset whose
validation has not ended.

In-process the validation is only recorded: what it finds in an archive is tested with real Ray
in ``tests/integration/test_datasets.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cvplatform.errors import Conflict, InvalidInput, PayloadTooLarge
from tests import datasets_kit as kit
from tests.api_harness import MAX_DATASET_BYTES, Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def _dataset_count(api: InProcessApi, caller: Caller) -> int:
    answer = await api.http.get("/api/v1/datasets", params={"limit": 200}, headers=caller.headers)
    total: int = answer.json()["total"]
    return total


async def _upload(api: InProcessApi, caller: Caller, archive: Path, task_type: str) -> str:
    answer = await api.upload_dataset(
        caller.headers, archive, archive.name, unique("d"), task_type, description="toy"
    )
    assert answer.status_code == 202, answer.text
    dataset_id: str = answer.json()["id"]
    return dataset_id


async def test_an_accepted_upload_is_stored_and_its_validation_submitted(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    archive, table = kit.images_with_metadata(tmp_path)
    answer = await api.upload_dataset(
        engineer.headers, archive, "pets.zip", unique("pets"), "classification", metadata=table
    )
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "uploaded"
    assert api.background.submitted == [("validate_dataset", accepted["id"])]
    dataset = (await api.http.get(accepted["url"], headers=engineer.headers)).json()
    assert (dataset["status"], dataset["source"]["filename"]) == ("uploaded", "pets.zip")
    assert dataset["source"]["size_bytes"] == archive.stat().st_size
    folder = api.settings.artifacts_dir / "datasets" / accepted["id"]
    assert len(list(folder.iterdir())) == 2  # the archive and its metadata table
    assert list(api.settings.staging_dir.glob("*.upload")) == []


async def test_upload_refusals(api: InProcessApi, engineer: Caller, tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    with big.open("wb") as sink:
        sink.truncate(MAX_DATASET_BYTES + 1)
    too_large = await api.upload_dataset(
        engineer.headers, big, "big.zip", unique("big"), "classification"
    )
    assert too_large.status_code == 413
    assert error_of(too_large, PayloadTooLarge)["code"] == "payload_too_large"
    archive = kit.class_folders(tmp_path / "ok.zip")
    for filename, message in (("../x.zip", "is a path"), ("data.tar", "send one of")):
        refused = await api.upload_dataset(
            engineer.headers, archive, filename, unique("n"), "classification"
        )
        assert refused.status_code == 422, filename
        error = error_of(refused, InvalidInput)
        assert error["code"] == "invalid_input" and message in error["message"]
    empty = await api.upload_dataset(
        engineer.headers, b"", "empty.zip", unique("e"), "classification"
    )
    assert empty.status_code == 422
    error = error_of(empty, InvalidInput)
    assert error["code"] == "invalid_input" and "empty" in error["message"]
    assert await _dataset_count(api, engineer) == 0
    assert list(api.settings.staging_dir.glob("*.upload")) == []
    assert api.background.submitted == []


async def test_form_fields_are_validated(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    archive = kit.class_folders(tmp_path / "ok.zip", per_class=1)
    answer = await api.upload_dataset(engineer.headers, archive, "ok.zip", "", "segmentation")
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    locations = [field["location"] for field in answer.json()["error"]["fields"]]
    assert locations == ["form.name", "form.task_type"]
    assert await _dataset_count(api, engineer) == 0


async def test_listing_filters_and_pages(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    archive = kit.class_folders(tmp_path / "d.zip", per_class=2)
    classification = [await _upload(api, engineer, archive, "classification") for _ in range(2)]
    detection = await _upload(api, engineer, archive, "detection")

    async def listed(**params: Any) -> dict[str, Any]:
        answer = await api.http.get("/api/v1/datasets", params=params, headers=engineer.headers)
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page

    uploaded = await listed(task_type="classification", status="uploaded", limit=200)
    assert {dataset["id"] for dataset in uploaded["items"]} == set(classification)
    assert all(
        d["task_type"] == "classification" and d["status"] == "uploaded" for d in uploaded["items"]
    )
    assert [d["id"] for d in (await listed(task_type="detection"))["items"]] == [detection]
    assert (await listed(status="ready"))["total"] == 0
    page = await listed(limit=1, offset=1)
    assert len(page["items"]) == 1 and page["total"] == 3
    assert page["items"][0]["id"] not in {d["id"] for d in (await listed(limit=1))["items"]}
    for params in ({"limit": 0}, {"offset": -1}, {"status": "sleeping"}):
        refused = await api.http.get("/api/v1/datasets", params=params, headers=engineer.headers)
        assert refused.status_code == 422, params
        assert error_of(refused)["code"] == "validation_error"


async def test_a_dataset_is_not_deleted_while_it_is_validated(
    api: InProcessApi, admin: Caller, engineer: Caller, tmp_path: Path
) -> None:
    archive = kit.class_folders(tmp_path / "d.zip", per_class=2)
    dataset_id = await _upload(api, engineer, archive, "classification")
    refused = await api.http.delete(f"/api/v1/datasets/{dataset_id}", headers=admin.headers)
    assert refused.status_code == 409
    error = error_of(refused, Conflict)
    assert error["code"] == "in_use" and "being validated" in error["message"]
    assert (api.settings.artifacts_dir / "datasets" / dataset_id).exists()
