"""On a CUDA host: two training jobs share the GPU, each on cuda:0 and under the memory limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvplatform.client import Client
from tests import datasets_kit
from tests.helpers import unique
from tests.integration.conftest import LivePlatform

pytestmark = pytest.mark.gpu


def test_two_jobs_share_one_gpu(platform: LivePlatform, admin: Client, tmp_path: Path) -> None:
    import torch
    from torchvision import models

    torch.save(models.resnet18(weights=None, num_classes=4).state_dict(), tmp_path / "r18.pth")
    model = admin.upload_model(
        tmp_path / "r18.pth", unique("gpu"), "classification", architecture="resnet18"
    )
    dataset = admin.upload_dataset(
        datasets_kit.class_folders(tmp_path / "d.zip", classes=4, per_class=40),
        unique("gpu"),
        "classification",
    )
    converted = admin.wait_for_model(model.id)
    assert converted.status == "ready", converted.status_reason
    validated = admin.wait_for_dataset(dataset.id)
    assert validated.status == "ready", validated.status_reason
    jobs = [
        admin.start_training(model.id, dataset.id, image_size=[64, 64], batch_size=16, max_epochs=3)
        for _ in range(2)
    ]
    both_running = False
    while not both_running and all(
        admin.get_job(j.id).status in ("queued", "running") for j in jobs
    ):
        both_running = all(admin.get_job(j.id).status == "running" for j in jobs)
    assert both_running, "the two jobs should run at once on the two slots"
    for job in jobs:
        done = admin.wait_for_job(job.id, timeout_s=600)
        assert done.status == "completed", done.error
        assert done.device == "cuda:0"
        assert (done.result or {})["peak_gpu_memory_mb"] < platform.settings.gpu_memory_limit_mb
