"""Presets, resuming conversions after a stop, and a conversion whose process dies."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import ray
import torch

from actors.jobs.runner import execute
from actors.models.presets import PRESETS
from actors.startup import REGISTER_PRESETS, start_model_work
from cvplatform.client import Client
from cvplatform.errors import Conflict
from store.actor import StoreClient
from store.artifacts import write_artifact
from tests import models_kit
from tests.helpers import unique, wait_for
from tests.integration.conftest import LivePlatform


def test_presets_register_once_and_convert(
    platform: LivePlatform, admin: Client, tmp_path: Path
) -> None:
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    # A usable weights file for EfficientNet-B0 under torchvision's own file name...
    torch.manual_seed(7)
    from torchvision.models import efficientnet_b0

    torch.save(
        efficientnet_b0(weights=None).state_dict(),
        weights_dir / PRESETS["efficientnet_b0"].weight_files[0],
    )
    # ...and an ultralytics full pickle for YOLOv8n, which must not be loaded.
    marker = tmp_path / "pwned"
    models_kit.malicious_pickle(weights_dir / "yolov8n.pt", marker)
    settings = platform.settings.model_copy(
        update={"presets": "yolov8n,resnet50,efficientnet_b0", "weights_dir": weights_dir}
    )
    register = ray.remote(num_cpus=1, max_calls=1)(execute)
    assert ray.get(register.remote(settings, REGISTER_PRESETS)) == "completed"
    assert ray.get(register.remote(settings, REGISTER_PRESETS)) == "completed"  # idempotent

    presets = {m.preset: m for m in admin.list_models(limit=200).items if m.is_preset}
    assert set(presets) == {"yolov8n", "resnet50", "efficientnet_b0"}
    assert sum(m.is_preset for m in admin.list_models(limit=200).items) == 3  # registered once
    for preset in presets.values():
        model = admin.wait_for_model(preset.id, timeout_s=400)
        assert model.status == "ready", model.status_reason
        assert model.parity is not None and model.parity["cosine_similarity"] > 0.9999
    ready = {key: admin.get_model(model.id) for key, model in presets.items()}
    assert ready["resnet50"].weights_origin == "random-init"
    assert ready["resnet50"].outputs[0].shape == ["batch", 1000]
    assert ready["efficientnet_b0"].weights_origin.startswith("efficientnet_b0_rwightman")
    assert "sha256:" in ready["efficientnet_b0"].weights_origin
    assert ready["yolov8n"].weights_origin == "random-init"
    assert "yolov8n.pt was found but not used" in ready["yolov8n"].details["weights_note"]
    assert not marker.exists()
    assert ready["yolov8n"].task_type == "detection"
    with pytest.raises(Conflict, match="preset"):
        admin.delete_model(ready["resnet50"].id)


def test_a_conversion_cut_short_is_resumed(
    platform: LivePlatform, admin: Client, tmp_path: Path
) -> None:
    """As if the platform stopped before converting: the next start picks the model up."""
    model_id = unique("resume").replace("-", "")
    source = models_kit.onnx_classifier(tmp_path / "resume.onnx")
    stored = write_artifact(
        platform.settings.artifacts_dir, f"models/{model_id}/source.onnx", [source.read_bytes()]
    )
    StoreClient().call_sync(
        "create_model",
        model={
            "id": model_id,
            "name": "resumed",
            "framework": "onnx",
            "source_format": "onnx",
            "task_type": "classification",
            "weights_origin": "uploaded",
            "source_filename": "resume.onnx",
        },
        source={
            "path": stored.relative_path,
            "sha256": stored.sha256,
            "size_bytes": stored.size_bytes,
        },
    )
    assert admin.get_model(model_id).status == "uploaded"
    start_model_work(platform.settings.model_copy(update={"presets": ""}))
    assert admin.wait_for_model(model_id, timeout_s=120).status == "ready"


def test_a_conversion_whose_process_dies_ends_failed(
    platform: LivePlatform, admin: Client, tmp_path: Path
) -> None:
    path = models_kit.resnet18_torchscript(tmp_path / "victim.pt")
    accepted = admin.upload_model(path, unique("victim"), "classification", input_shape=[3, 64, 64])

    def converting_process() -> psutil.Process:
        assert admin.get_model(accepted.id).status == "converting"
        found = [
            process
            for process in psutil.process_iter(["cmdline"])
            if f"convert-model-{accepted.id[:8]}" in " ".join(process.info["cmdline"] or [])
        ]
        assert found
        return found[0]

    wait_for(converting_process, timeout_s=60, interval_s=0.05).kill()
    model = admin.wait_for_model(accepted.id, timeout_s=60)
    assert model.status == "failed"
    assert "the process running it died" in (model.status_reason or "")
    time.sleep(0.1)
