"""A platform restart keeps a queued job and runs it; the job that was running ends
``failed`` ("interrupted")."""

from __future__ import annotations

from pathlib import Path

from cvplatform.client import Client
from tests import datasets_kit
from tests.e2e.conftest import Machine
from tests.helpers import wait_for


def _tiny_model(path: Path) -> Path:
    import torch
    from torchvision import models

    torch.manual_seed(0)
    torch.save(models.mobilenet_v3_small(weights=None, num_classes=3).state_dict(), path)
    return path


def test_a_queued_job_survives_a_restart(machine: Machine, tmp_path: Path) -> None:
    machine.env.update(
        CVP_PRESETS="", CVP_SAMPLES="", CVP_GPU_SLOTS="1", CVP_ADMIN_PASSWORD="restart-test-pw"
    )
    assert machine.cvp("up", "--detach").returncode == 0
    try:
        with Client.login(machine.api_url, "admin", "restart-test-pw") as admin:
            model = admin.upload_model(
                _tiny_model(tmp_path / "m.pth"),
                "tiny",
                "classification",
                architecture="mobilenet_v3_small",
            )
            dataset = admin.upload_dataset(
                datasets_kit.class_folders(tmp_path / "d.zip"), "tiny", "classification"
            )
            assert admin.wait_for_model(model.id, timeout_s=240).status == "ready"
            assert admin.wait_for_dataset(dataset.id).status == "ready"
            fast = {"image_size": [32, 32], "batch_size": 8}
            running = admin.start_training(model.id, dataset.id, **fast, max_epochs=1000)
            queued = admin.start_training(model.id, dataset.id, **fast, max_epochs=1)
            wait_for(lambda: admin.get_job(running.id).status == "running" or 1 / 0, timeout_s=120)
            assert admin.get_job(queued.id).status == "queued"
    finally:
        assert machine.cvp("down", timeout_s=120).returncode == 0

    assert machine.cvp("up", "--detach").returncode == 0
    try:
        with Client.login(machine.api_url, "admin", "restart-test-pw") as admin:
            interrupted = admin.get_job(running.id)
            assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
            assert admin.wait_for_job(queued.id, timeout_s=300).status == "completed"
    finally:
        machine.cvp("down", timeout_s=120)
