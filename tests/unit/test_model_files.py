"""Recognizing uploads, unpacking archives safely, parity and task checks: plain code."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from actors.models.formats import check_upload_filename, detect_source_format
from actors.models.onnx_inspect import check_task, inspect_onnx
from actors.models.parity import compare, seeded_input
from cvplatform.archives import ExtractLimits, safe_extract
from cvplatform.errors import ConversionFailed, InvalidInput, InvalidModel
from tests import models_kit

LIMITS = ExtractLimits(max_total_bytes=10_000, max_ratio=100.0)


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("m.onnx", ".onnx"),
        ("M.PTH", ".pth"),
        ("model.v2.pt", ".pt"),
        ("k.h5", ".h5"),
        ("s.zip", ".zip"),
    ],
)
def test_good_file_names(name: str, extension: str) -> None:
    assert check_upload_filename(name) == extension


@pytest.mark.parametrize(
    "name", ["", "..", "../m.onnx", "/abs/m.onnx", "a/m.onnx", "..\\m.onnx", "C:\\m.onnx", "m.txt"]
)
def test_bad_file_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_upload_filename(name)


def test_formats_by_content(tmp_path: Path) -> None:
    scripted = models_kit.resnet18_torchscript(tmp_path / "a.pt")
    state = models_kit.resnet18_state_dict(tmp_path / "b.pt")
    assert detect_source_format(scripted, ".pt", False) == "torchscript"
    assert detect_source_format(state, ".pt", False) == "torch_state_dict"
    (tmp_path / "empty.onnx").write_bytes(b"")
    not_hdf5 = tmp_path / "x.h5"
    not_hdf5.write_bytes(b"hello")
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"hello")
    graph = tmp_path / "g.pb"
    graph.write_bytes(b"\x0a\x00")
    for path, extension, message in (
        (tmp_path / "empty.onnx", ".onnx", "empty"),
        (not_hdf5, ".h5", "not HDF5"),
        (not_zip, ".zip", "zipped TensorFlow SavedModel"),
        (graph, ".pb", "input_names and output_names"),
    ):
        with pytest.raises(InvalidModel, match=message):
            detect_source_format(path, extension, False)


def _zip(path: Path, entries: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_safe_extract_unpacks_a_good_archive(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"a/b.txt": b"hello", "c.txt": b"x" * 100})
    assert safe_extract(archive, tmp_path / "out", LIMITS) == 105
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("entries", "link", "message"),
    [
        ({"../escape.txt": b"x"}, None, "climbs out"),
        ({"/abs.txt": b"x"}, None, "absolute"),
        ({"ok.txt": b"x"}, "evil-link", "symbolic link"),
        ({"big.bin": b"\0" * 50_000}, None, "unpacks to more than"),
    ],
)
def test_safe_extract_refuses(
    tmp_path: Path, entries: dict[str, bytes], link: str | None, message: str
) -> None:
    archive = _zip(tmp_path / "bad.zip", entries, link)
    with pytest.raises(InvalidInput, match=message):
        safe_extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_safe_extract_counts_bytes_not_headers(tmp_path: Path) -> None:
    """A bomb whose header understates its size is still stopped by counting while unpacking."""
    archive = _zip(tmp_path / "liar.zip", {"bomb.bin": b"\0" * 200_000})
    data = bytearray(archive.read_bytes())
    # Rewrite the declared sizes (local and central headers) to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(InvalidInput):
        safe_extract(
            archive, tmp_path / "out", ExtractLimits(max_total_bytes=50_000, max_ratio=1e9)
        )
    assert not (tmp_path / "out").exists()


def test_truncated_zip(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "t.zip", {"a.txt": b"x" * 5000})
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(InvalidInput, match="not a readable ZIP"):
        safe_extract(archive, tmp_path / "out", LIMITS)


def test_parity_passes_and_fails_with_figures() -> None:
    reference = [seeded_input([2, 5], 0)]
    assert compare(reference, [reference[0] + 1e-6], 0, [2, 5]).cosine_similarity > 0.9999
    with pytest.raises(ConversionFailed, match="max abs diff"):
        compare(reference, [reference[0] + 0.5], 0, [2, 5])
    with pytest.raises(ConversionFailed, match="shape"):
        compare(reference, [np.zeros((2, 4), np.float32)], 0, [2, 5])
    assert np.array_equal(seeded_input([3], 4), seeded_input([3], 4))


def test_task_checks(tmp_path: Path) -> None:
    classifier = inspect_onnx(models_kit.onnx_classifier(tmp_path / "c.onnx"))
    detector = inspect_onnx(models_kit.onnx_detector(tmp_path / "d.onnx"))
    assert check_task(classifier, "classification") == "classifier with 4 classes"
    assert check_task(detector, "detection") == "YOLO-style head"
    with pytest.raises(InvalidModel, match="looks like a detection model"):
        check_task(detector, "classification")
    with pytest.raises(InvalidModel, match="a detection model has"):
        check_task(classifier, "detection")


def test_an_ultralytics_checkpoint_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """ultralytics saves whole pickled model objects; loading one would run its classes' code."""
    import os

    import torch

    from actors.models.torch_source import load_state_dict

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import DetectionModel

    checkpoint = tmp_path / "yolov8n.pt"
    torch.save({"model": DetectionModel("yolov8n.yaml", nc=2, verbose=False)}, checkpoint)
    with pytest.raises(InvalidModel, match="ultralytics checkpoint") as refused:
        load_state_dict(checkpoint)
    assert "model.state_dict()" in refused.value.message and "yolov8n.yaml" in refused.value.message
