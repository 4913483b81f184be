"""Models through the live platform: upload, background conversion with parity, deletion, and
the bad model files that the conversion finds.

Uploads refused up front (bad names, empty, too large, bad form fields, a missing extra), listing
and deleting too early are tested in-process in ``tests/api/test_model_uploads.py``."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvplatform.client import Client
from cvplatform.errors import InvalidModel
from tests import models_kit
from tests.helpers import unique
from tests.integration.conftest import LivePlatform

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def engineer(platform: LivePlatform) -> Iterator[Client]:
    _, client = platform.new_user("engineer")
    yield client
    client.close()


def _ready(client: Client, model_id: str) -> object:
    model = client.wait_for_model(model_id, timeout_s=240)
    assert model.status == "ready", model.status_reason
    return model


def _stored(platform: LivePlatform, model_id: str) -> list[Path]:
    folder = platform.settings.artifacts_dir / "models" / model_id
    return sorted(folder.iterdir()) if folder.exists() else []


def test_onnx_upload_is_checked_and_ready(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    path = models_kit.onnx_classifier(kit / "tiny.onnx")
    accepted = engineer.upload_model(path, unique("tiny"), "classification", description="toy")
    assert accepted.status == "uploaded"
    model = _ready(engineer, accepted.id)
    assert model.framework == "onnx" and model.weights_origin == "uploaded"
    assert model.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.onnx is not None and model.onnx.sha256 == model.source.sha256
    assert [(t.name, t.dtype, t.shape) for t in model.inputs] == [
        ("input", "float32", ["batch", 3, 32, 32])
    ]
    assert [(t.name, t.shape) for t in model.outputs] == [("logits", ["batch", 4])]
    assert model.parameter_count == 3 * 8 * 9 + 8 + 8 * 4 + 4
    assert model.details["summary"]["opset"] == 17
    assert "Conv" in model.details["summary"]["op_types"]
    assert model.parity is not None
    assert model.parity["compared_with"] == "ONNX reference evaluator"
    assert model.parity["within_tolerance"] is True
    assert model.parity["max_abs_diff"] < 1e-4 and model.parity["input_shape"] == [1, 3, 32, 32]


@pytest.mark.parametrize("kind", ["state_dict", "torchscript"])
def test_pytorch_uploads_convert_with_parity(
    platform: LivePlatform, engineer: Client, kit: Path, kind: str
) -> None:
    if kind == "state_dict":
        path = models_kit.resnet18_state_dict(kit / "resnet18.pth")
        fields = {"architecture": "resnet18", "input_shape": [3, 32, 32]}
    else:
        path = models_kit.resnet18_torchscript(kit / "resnet18_scripted.pt")
        fields = {"input_shape": [3, 32, 32]}
    model = _ready(
        engineer, engineer.upload_model(path, unique(kind), "classification", **fields).id
    )
    assert model.framework == "pytorch"
    assert model.source.format == ("torch_state_dict" if kind == "state_dict" else "torchscript")
    assert model.parity is not None
    assert model.parity["max_abs_diff"] < 1e-3 and model.parity["cosine_similarity"] > 0.9999
    assert model.parity["input_shape"] == [2, 3, 32, 32]
    assert model.outputs[0].shape == ["batch", 10]
    onnx_file = platform.settings.artifacts_dir / "models" / model.id / "model.onnx"
    assert model.onnx is not None
    assert hashlib.sha256(onnx_file.read_bytes()).hexdigest() == model.onnx.sha256
    assert model.parameter_count == 11_181_642


def test_yolo_state_dict_converts_as_detection(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    path = models_kit.yolo_state_dict(kit / "yolo.pth", classes=3)
    accepted = engineer.upload_model(
        path,
        unique("yolo"),
        "detection",
        architecture="yolov8n.yaml",
        num_classes=3,
        input_shape=[3, 160, 160],
    )
    model = _ready(engineer, accepted.id)
    assert model.details["task_head"] == "YOLO-style head"
    assert model.outputs[0].shape[0] == "batch"
    assert model.parity is not None and model.parity["cosine_similarity"] > 0.9999


@pytest.mark.skipif(not HAS_TENSORFLOW, reason="the tensorflow extra is not installed")
def test_tensorflow_uploads_convert_with_parity(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    h5 = models_kit.keras_h5(kit / "keras.h5")
    pb, inputs, outputs = models_kit.frozen_graph(kit / "frozen.pb")
    saved = models_kit.saved_model_zip(kit / "saved_model.zip")
    uploads = [
        engineer.upload_model(h5, unique("keras"), "classification"),
        engineer.upload_model(
            pb, unique("frozen"), "classification", input_names=inputs, output_names=outputs
        ),
        engineer.upload_model(saved, unique("savedmodel"), "classification"),
    ]
    for accepted, source_format in zip(
        uploads, ["keras_h5", "tf_frozen_graph", "tf_saved_model"], strict=True
    ):
        model = _ready(engineer, accepted.id)
        assert (model.framework, model.source.format) == ("tensorflow", source_format)
        assert model.parity is not None and model.parity["max_abs_diff"] < 1e-3
        assert model.inputs[0].shape[1:] == [32, 32, 3]  # channels last, as TensorFlow has it


def _invalid(client: Client, accepted_id: str) -> str:
    model = client.wait_for_model(accepted_id, timeout_s=240)
    assert model.status == "invalid", (model.status, model.status_reason)
    assert model.status_reason
    return model.status_reason


def test_bad_model_files_end_invalid_with_the_reason(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    good = models_kit.onnx_classifier(kit / "good.onnx")
    truncated = kit / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = {
        "random bytes": (models_kit.random_bytes(kit / "random.onnx"), {}, "ONNX"),
        "truncated": (truncated, {}, "ONNX"),
        "missing input": (models_kit.onnx_missing_input(kit / "ghost.onnx"), {}, "ghost"),
        "wrong architecture": (
            models_kit.resnet18_state_dict(kit / "r18.pth"),
            {"architecture": "mobilenet_v3_small"},
            "does not match architecture 'mobilenet_v3_small': missing features.0.0.weight",
        ),
    }
    accepted = {
        case: engineer.upload_model(path, unique("bad"), "classification", **fields).id
        for case, (path, fields, _) in cases.items()
    }
    for case, (_, _, expected) in cases.items():
        assert expected in _invalid(engineer, accepted[case]), case


def test_an_unknown_architecture_is_refused_at_upload(engineer: Client, kit: Path) -> None:
    # Checked before the file is kept (tests/api/test_model_architecture.py has the paths).
    path = models_kit.resnet18_state_dict(kit / "r18-unknown.pth")
    with pytest.raises(InvalidModel) as refused:
        engineer.upload_model(path, unique("bad"), "classification", architecture="resnet9000")
    assert "unknown classification architecture 'resnet9000'" in refused.value.message


def test_detection_model_uploaded_as_classification(engineer: Client, kit: Path) -> None:
    path = models_kit.onnx_detector(kit / "detector.onnx")
    reason = _invalid(engineer, engineer.upload_model(path, unique("det"), "classification").id)
    assert "looks like a detection model" in reason
    assert (
        engineer.wait_for_model(engineer.upload_model(path, unique("det"), "detection").id).status
        == "ready"
    )


@pytest.mark.parametrize("builder", [models_kit.malicious_pickle, models_kit.raw_pickle])
def test_a_malicious_pickle_never_runs(
    engineer: Client, kit: Path, tmp_path: Path, builder: object
) -> None:
    marker = tmp_path / "pwned"
    path = builder(kit / f"evil-{builder.__name__}.pth", marker)  # type: ignore[operator]
    reason = _invalid(
        engineer,
        engineer.upload_model(path, unique("evil"), "classification", architecture="resnet18").id,
    )
    assert "arbitrary code" in reason
    assert not marker.exists()


def test_a_torchscript_that_reads_the_jwt_secret_is_refused(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    secret = platform.settings.jwt_secret_path
    before = secret.read_bytes()
    path = models_kit.secret_reading_torchscript(kit / "leak.pt", secret, len(before))
    reason = _invalid(engineer, engineer.upload_model(path, unique("leak"), "classification").id)
    assert "the graph uses aten::from_file, which can read server files" in reason
    assert secret.read_bytes() == before


def test_delete_removes_row_and_files(
    platform: LivePlatform, admin: Client, engineer: Client, kit: Path
) -> None:
    path = models_kit.onnx_classifier(kit / "doomed.onnx")
    accepted = engineer.upload_model(path, unique("doomed"), "classification")
    assert engineer.wait_for_model(accepted.id).status == "ready"
    assert _stored(platform, accepted.id)
    admin.delete_model(accepted.id)
    assert _stored(platform, accepted.id) == []
    with pytest.raises(Exception) as gone:
        engineer.get_model(accepted.id)
    assert gone.value.http_status == 404  # type: ignore[attr-defined]
