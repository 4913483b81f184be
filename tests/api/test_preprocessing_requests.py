"""Preprocessing requests refused up front: a dataset that is not ready, and bad configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvplatform.errors import Conflict
from tests import datasets_kit
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def test_preprocessing_refusals(api: InProcessApi, admin: Caller, tmp_path: Path) -> None:
    archive = datasets_kit.class_folders(tmp_path / "p.zip")
    uploaded = await api.upload_dataset(
        admin.headers, archive, "p.zip", unique("p"), "classification"
    )
    pending = uploaded.json()  # its validation is recorded, never run: it stays "uploaded"
    preprocess = f"/api/v1/datasets/{pending['id']}/preprocess"
    too_early = await api.http.post(preprocess, json={}, headers=admin.headers)
    assert too_early.status_code == 409
    error = error_of(too_early, Conflict)
    assert error["code"] == "conflict" and "once it is ready" in error["message"]
    # A bad config is refused before the dataset is looked at.
    for body, field in (
        ({"split": [0.5, 0.5, 0.5]}, "body"),
        ({"image_size": [0, 10]}, "body"),
        ({"seed": "many"}, "body.seed"),
        ({"augmentation": {"horizontal_flip": 3}}, "body.augmentation.horizontal_flip"),
    ):
        answer = await api.http.post(preprocess, json=body, headers=admin.headers)
        assert answer.status_code == 422, body
        assert error_of(answer)["code"] == "validation_error"
        assert answer.json()["error"]["fields"][0]["location"] == field
    assert [kind for kind, _ in api.background.submitted] == ["validate_dataset"]
