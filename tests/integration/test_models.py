"""Models through the live platform: upload, background conversion with parity, listing,
deletion, and every kind of bad upload."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cvplatform.client import Client
from cvplatform.errors import Conflict, InvalidInput, InvalidModel, MissingExtra, PayloadTooLarge
from tests import models_kit
from tests.helpers import unique
from tests.integration.conftest import MAX_MODEL_BYTES, LivePlatform

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


@pytest.mark.skipif(HAS_TENSORFLOW, reason="the tensorflow extra is installed here")
def test_tensorflow_file_without_the_extra(engineer: Client, kit: Path) -> None:
    fake = kit / "model.h5"
    fake.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(MissingExtra, match=r"cv-platform\[tensorflow\]"):
        engineer.upload_model(fake, unique("tf"), "classification")


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
        "unknown architecture": (
            models_kit.resnet18_state_dict(kit / "r18.pth"),
            {"architecture": "resnet9000"},
            "unknown classification architecture 'resnet9000'",
        ),
        "wrong architecture": (
            kit / "r18.pth",
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
def test_refused_file_names_leave_nothing(
    platform: LivePlatform, engineer: Client, kit: Path, filename: str, message: str
) -> None:
    before = engineer.list_models(limit=200).total
    staged = set(platform.settings.staging_dir.glob("*"))
    with pytest.raises(InvalidInput, match=message):
        engineer.upload_model(
            models_kit.onnx_classifier(kit / "ok.onnx"),
            unique("n"),
            "classification",
            filename=filename,
        )
    assert engineer.list_models(limit=200).total == before
    assert set(platform.settings.staging_dir.glob("*")) == staged
    assert not (platform.settings.data_dir / "escape.onnx").exists()


def test_empty_file_is_refused_at_once(engineer: Client, kit: Path) -> None:
    empty = kit / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidModel, match="empty"):
        engineer.upload_model(empty, unique("empty"), "classification")


def test_model_over_the_size_limit_is_413(
    platform: LivePlatform, engineer: Client, kit: Path
) -> None:
    big = kit / "big.onnx"
    with big.open("wb") as sink:
        sink.truncate(MAX_MODEL_BYTES + 1)
    before = engineer.list_models(limit=200).total
    with pytest.raises(PayloadTooLarge) as refused:
        engineer.upload_model(big, unique("big"), "classification")
    assert refused.value.http_status == 413  # type: ignore[attr-defined]
    assert engineer.list_models(limit=200).total == before
    assert list(platform.settings.staging_dir.glob("*.upload")) == []


def test_form_fields_are_validated(platform: LivePlatform, engineer: Client, kit: Path) -> None:
    path = models_kit.onnx_classifier(kit / "fields.onnx")
    with path.open("rb") as stream:
        answer = httpx.post(
            f"{platform.url}/api/v1/models",
            headers=dict(engineer._http.headers),
            data={"name": "x", "task_type": "segmentation", "num_classes": "-3"},
            files={"file": ("fields.onnx", stream)},
        )
    assert answer.status_code == 422
    locations = [field["location"] for field in answer.json()["error"]["fields"]]
    assert locations == ["form.task_type", "form.num_classes"]
    not_multipart = httpx.post(
        f"{platform.url}/api/v1/models", headers=dict(engineer._http.headers), json={"name": "x"}
    )
    assert not_multipart.status_code == 422 and "multipart" in not_multipart.text


def test_listing_filters_and_pages(platform: LivePlatform, engineer: Client, kit: Path) -> None:
    path = models_kit.onnx_classifier(kit / "listed.onnx")
    ids = [engineer.upload_model(path, unique("listed"), "classification").id for _ in range(3)]
    for model_id in ids:
        engineer.wait_for_model(model_id)
    everything = engineer.list_models(limit=200)
    assert set(ids) <= {model.id for model in everything.items}
    first, second = engineer.list_models(limit=2, offset=0), engineer.list_models(limit=2, offset=2)
    assert first.total == second.total == everything.total
    assert {m.id for m in first.items}.isdisjoint({m.id for m in second.items})
    onnx_ready = engineer.list_models(framework="onnx", status="ready", limit=200)
    assert all(m.framework == "onnx" and m.status == "ready" for m in onnx_ready.items)
    assert set(ids) <= {m.id for m in onnx_ready.items}
    assert (
        engineer.list_models(task_type="detection", framework="onnx", limit=200).total
        < everything.total
    )


def test_delete_removes_row_and_files(
    platform: LivePlatform, admin: Client, engineer: Client, kit: Path
) -> None:
    path = models_kit.onnx_classifier(kit / "doomed.onnx")
    accepted = engineer.upload_model(path, unique("doomed"), "classification")
    with pytest.raises(Conflict, match="being converted"):
        admin.delete_model(accepted.id)  # too early: its conversion is running
    engineer.wait_for_model(accepted.id)
    assert _stored(platform, accepted.id)
    admin.delete_model(accepted.id)
    assert _stored(platform, accepted.id) == []
    with pytest.raises(Exception) as gone:
        engineer.get_model(accepted.id)
    assert gone.value.http_status == 404  # type: ignore[attr-defined]
