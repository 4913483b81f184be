"""The parts of ``bench/load.py`` that run without a platform: its JPEG payloads (parsed by the
multipart parser the Serve app uses and decoded as the service decodes them), the raw ONNX
Runtime baseline on a tiny real model, and the figures and targets it prints."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request

from cvplatform.inference.payloads import images_from_files

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # appended: bench's script names must not shadow anything

import load  # noqa: E402
import load_client  # noqa: E402


def parsed_files(payload: load_client.Payload) -> list[tuple[str, bytes]]:
    """The payload's ``files`` parts as Starlette's multipart parser reads them."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload.body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", payload.content_type.encode())],
    }

    async def read() -> list[tuple[str, bytes]]:
        form = await Request(scope, receive).form()
        parts = [part for part in form.getlist("files") if isinstance(part, UploadFile)]
        return [(part.filename or "", await part.read()) for part in parts]

    return asyncio.run(read())


def tiny_onnx(path: Path, dims: Sequence[int | str]) -> Path:
    """A 1x1 convolution and a global average: a real model of a few hundred bytes."""
    weight = helper.make_tensor(
        "weight", TensorProto.FLOAT, [2, 3, 1, 1], np.ones(6, np.float32).tolist()
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "weight"], ["features"]),
            helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_payloads_are_different_jpegs_the_same_for_a_seed() -> None:
    payloads = load_client.make_payloads(4, seed=3)
    assert len({payload.body for payload in payloads}) == 4
    assert [p.body for p in load_client.make_payloads(4, seed=3)] == [p.body for p in payloads]
    assert payloads[0].body != load_client.make_payloads(1, seed=4)[0].body
    for index, payload in enumerate(payloads):
        ((name, jpeg),) = parsed_files(payload)
        assert name == f"load-{index}.jpg"
        image = Image.open(io.BytesIO(jpeg))
        assert image.format == "JPEG"
        assert image.size == load_client.PAYLOAD_SIZES[index]
        # Structure, not a flat colour: the shapes and the gradient spread the pixel values.
        assert np.asarray(image.convert("L")).std() > 10


def test_a_payload_decodes_as_the_service_decodes_it() -> None:
    files = parsed_files(load_client.make_payloads(1, seed=0)[0])
    batch = images_from_files(files, max_batch=32, max_pixels=10_000_000)
    assert batch.names == ("load-0.jpg",)
    assert batch.images[0].size == (224, 224)


def test_figures_count_every_status_and_keep_samples_of_errors_but_503() -> None:
    recorded = load_client.Recorded(elapsed_s=2.0)
    for latency_ms, batched in ((10.0, 1), (20.0, 3), (30.0, 3), (40.0, 4)):
        body = f'{{"batched_with": {batched}, "engine": "onnxruntime_cpu"}}'.encode()
        recorded.add(200, latency_ms, body)
    recorded.add(503, 1.0, b'{"error": {"code": "queue_full"}}')
    recorded.add(500, 5.0, b'{"error": {"code": "internal_error"}}')
    recorded.add_failure(ConnectionResetError("reset by peer"))

    figures = load_client.load_figures(recorded)

    assert figures["requests"] == 7
    assert figures["succeeded"] == 4
    assert figures["requests_per_s"] == 3.5
    assert figures["succeeded_per_s"] == 2.0
    assert figures["by_status"] == {"200": 4, "500": 1, "503": 1, "ConnectionResetError": 1}
    assert set(figures["errors_other_than_503"]) == {"500", "ConnectionResetError"}
    assert "internal_error" in figures["errors_other_than_503"]["500"]
    assert figures["p50_ms"] == 25.0  # of the 200 answers only
    assert figures["p99_ms"] == pytest.approx(39.7)
    assert figures["median_batched_with"] == 3
    assert figures["engines"] == {"onnxruntime_cpu": 4}


def test_retry_after_is_honoured_within_a_cap() -> None:
    assert load_client._retry_after_s(None) == 0.0
    assert load_client._retry_after_s("2") == 2.0
    assert load_client._retry_after_s("3600") == load_client.RETRY_AFTER_CAP_S
    assert load_client._retry_after_s("Wed, 21 Oct 2026 07:28:00 GMT") == 1.0


def test_raw_baseline_runs_the_model_at_the_pool_batch(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "tiny.onnx", ["batch", 3, 16, 16])

    raw = load.raw_baseline(model, batch_size=4, seconds=0.2, runs=5)

    assert raw["batch_size"] == 4
    assert raw["input_shape"] == [3, 16, 16]
    assert raw["samples_per_s"] > 0
    assert raw["batch1_p50_ms"] > 0
    assert raw["batch1_runs"] == 5


def test_raw_baseline_measures_free_image_sides_at_224(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "free.onnx", ["batch", 3, "height", "width"])
    assert load.raw_baseline(model, 1, seconds=0.05, runs=2)["input_shape"] == [3, 224, 224]


@pytest.mark.parametrize(
    ("median", "batch"), [(None, 1), (0.4, 1), (1.0, 1), (2.5, 3), (7.49, 7), (12.0, 12)]
)
def test_the_raw_batch_is_the_pool_median_rounded(median: float | None, batch: int) -> None:
    assert load.pool_batch_size(median) == batch


OPTIONS = load.parse(["--users", "100", "--seconds", "60"])


def _figures(p50: float, p99: float, per_s: float, errors: dict[str, str]) -> dict[str, Any]:
    return {
        "succeeded_per_s": per_s,
        "elapsed_s": 60.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors_other_than_503": errors,
        "engines": {"onnxruntime_cpu": 3},
    }


def test_the_report_checks_each_target() -> None:
    raw = {"samples_per_s": 100.0, "batch1_p50_ms": 20.0}
    good = load.report(
        "EfficientNet-B0", _figures(500, 1500, 70.0, {}), _figures(27, 30, 30, {}), raw, OPTIONS
    )
    assert good["ratio_throughput"] == 0.7
    assert good["single_user_p50_over_raw_ms"] == 7.0
    assert good["engine"] == "onnxruntime_cpu"
    assert (good["users"], good["seconds"]) == (100, 60.0)
    assert all(good["targets"]["met"].values())

    bad = load.report(
        "EfficientNet-B0",
        _figures(500, 2500, 60.0, {"500": "boom"}),
        _figures(29, 30, 30, {}),
        raw,
        OPTIONS,
    )
    assert bad["targets"]["met"] == {
        "throughput_ratio": False,
        "p99_ms": False,
        "no_errors_but_503": False,
        "single_user_extra_ms": False,
    }
