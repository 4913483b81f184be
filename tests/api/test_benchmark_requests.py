"""Benchmark requests over HTTP in-process: each bad input refused before anything is queued,
a good one queued for a GPU slot, and the listings. What a benchmark measures once it runs is
tested in ``tests/unit/test_benchmark_job.py`` (the job's code over a real store) and with real
Ray in ``tests/integration/test_benchmarks.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.models.onnx_inspect import inspect_onnx
from cvplatform.errors import Conflict, CvpError, InvalidInput, NotFound, PermissionDenied
from tests import models_kit
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio
BENCHMARKS = "/api/v1/benchmarks"


async def _upload_onnx(api: InProcessApi, caller: Caller, path: Path) -> str:
    answer = await api.upload_model(
        caller.headers, path, path.name, unique("tiny"), "classification"
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


@pytest.fixture
async def ready_model(api: InProcessApi, engineer: Caller, tmp_path: Path) -> str:
    """A tiny ONNX classifier (3, 32, 32, dynamic batch) made ready as its conversion would."""
    path = models_kit.onnx_classifier(tmp_path / "tiny.onnx")
    model_id = await _upload_onnx(api, engineer, path)
    api.store.run_sync(
        "finish_conversion",
        model_id=model_id,
        onnx=None,
        details={"summary": inspect_onnx(path), "input_shape": [3, 32, 32]},
    )
    return model_id


async def _nothing_queued(api: InProcessApi, caller: Caller) -> None:
    jobs = await api.http.get("/api/v1/jobs", headers=caller.headers)
    assert jobs.json()["total"] == 0
    assert ("wake_scheduler", "") not in api.background.submitted


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"engines": ["onnxruntime_gpu_magic"]}, "body.engines.0"),
        ({"engines": []}, "body.engines"),
        ({"batch_sizes": [0]}, "body.batch_sizes"),
        ({"batch_sizes": [1025]}, "body.batch_sizes"),
        ({"batch_sizes": [1, 1]}, "body.batch_sizes"),
        ({"input_shape": [1, 3, 32, 32]}, "body.input_shape"),
        ({"input_shape": [3, 32]}, "body.input_shape"),
        ({"iterations": 0}, "body.iterations"),
        ({"warmup_iterations": -1}, "body.warmup_iterations"),
        (
            {"constraints": [{"metric": "speed", "op": "<", "value": 5}]},
            "body.constraints.0.metric",
        ),
        (
            {"constraints": [{"metric": "latency_p95_ms", "op": "=", "value": 5}]},
            "body.constraints.0.op",
        ),
        (
            {"constraints": [{"metric": "latency_p95_ms", "op": "<", "value": "inf"}]},
            "body.constraints.0.value",
        ),
        ({"objective": "cheapest"}, "body.objective"),
    ],
)
async def test_bad_benchmark_requests_are_422(
    api: InProcessApi,
    engineer: Caller,
    ready_model: str,
    change: dict[str, Any],
    location: str,
) -> None:
    body = {"model_id": ready_model, **change}
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "validation_error"
    assert location in [field["location"] for field in error["fields"]]
    await _nothing_queued(api, engineer)


async def test_unknown_metric_names_the_known_ones(
    api: InProcessApi, engineer: Caller, ready_model: str
) -> None:
    body = {"model_id": ready_model, "constraints": [{"metric": "fps", "op": ">", "value": 1}]}
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)
    message = error_of(answer)["fields"][0]["message"]
    assert "unknown metric 'fps'" in message
    assert "throughput_fps" in message


@pytest.mark.parametrize(
    ("change", "status", "sdk_raises", "message"),
    [
        ({"model_id": "no-such-model"}, 404, NotFound, "no model with id no-such-model"),
        ({"input_shape": [1, 32, 32]}, 422, InvalidInput, "its channels is 3"),
        ({"input_shape": [3, 64, 64]}, 422, InvalidInput, "its height is 32"),
    ],
)
async def test_input_shapes_are_checked_against_the_model(
    api: InProcessApi,
    engineer: Caller,
    ready_model: str,
    change: dict[str, Any],
    status: int,
    sdk_raises: type[CvpError],
    message: str,
) -> None:
    body = {"model_id": ready_model, **change}
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)
    assert answer.status_code == status, answer.text
    assert message in error_of(answer, sdk_raises)["message"]
    await _nothing_queued(api, engineer)


async def test_a_model_that_is_not_ready_is_409(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    model_id = await _upload_onnx(api, engineer, models_kit.onnx_classifier(tmp_path / "m.onnx"))
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json={"model_id": model_id})
    assert answer.status_code == 409
    assert "is uploaded; benchmark it once it is ready" in error_of(answer, Conflict)["message"]
    await _nothing_queued(api, engineer)


async def test_a_fixed_batch_model_takes_its_batch_size_only(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    path = models_kit.onnx_classifier(tmp_path / "fixed.onnx")
    model_id = await _upload_onnx(api, engineer, path)
    summary = {"inputs": [{"name": "input", "shape": [1, 3, 32, 32]}]}
    api.store.run_sync(
        "finish_conversion", model_id=model_id, onnx=None, details={"summary": summary}
    )
    body = {"model_id": model_id, "batch_sizes": [1, 8]}
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)
    assert answer.status_code == 422
    assert "fixed batch size of 1" in error_of(answer, InvalidInput)["message"]


async def test_a_viewer_cannot_start_a_benchmark(
    api: InProcessApi, viewer: Caller, ready_model: str
) -> None:
    answer = await api.http.post(BENCHMARKS, headers=viewer.headers, json={"model_id": ready_model})
    assert answer.status_code == 403
    error_of(answer, PermissionDenied)
    await _nothing_queued(api, await api.new_user("admin"))


async def test_a_benchmark_is_queued_and_listed(
    api: InProcessApi, engineer: Caller, ready_model: str
) -> None:
    body = {
        "model_id": ready_model,
        "engines": ["onnxruntime_cpu", "onnxruntime_cpu_int8"],
        "batch_sizes": [8, 1],
        "constraints": [{"metric": "latency_p95_ms", "op": "<", "value": 50}],
    }
    answer = await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["kind"], job["status"], job["model_id"]) == ("benchmark", "queued", ready_model)
    assert job["request"]["batch_sizes"] == [1, 8]
    assert job["request"]["iterations"] == 200 and job["request"]["warmup_iterations"] == 20
    assert ("wake_scheduler", "") in api.background.submitted

    detail = await api.http.get(f"{BENCHMARKS}/{job['id']}", headers=engineer.headers)
    assert detail.json()["results"] == [] and detail.json()["status"] == "queued"
    listed = await api.http.get(BENCHMARKS, headers=engineer.headers)
    assert [item["id"] for item in listed.json()["items"]] == [job["id"]]
    of_model = await api.http.get(
        f"/api/v1/models/{ready_model}/benchmarks", headers=engineer.headers
    )
    assert of_model.json()["total"] == 1


async def test_results_are_read_back_per_engine_and_batch_size(
    api: InProcessApi, engineer: Caller, ready_model: str
) -> None:
    answer = await api.http.post(
        BENCHMARKS, headers=engineer.headers, json={"model_id": ready_model}
    )
    job_id = answer.json()["id"]
    api.store.run_sync(
        "record_benchmark_result",
        job_id=job_id,
        engine="tensorrt_fp16",
        batch_size=1,
        status="unavailable",
        metrics={},
        intervals={},
        details={},
        error="TensorRT is not installed",
    )
    detail = (await api.http.get(f"{BENCHMARKS}/{job_id}", headers=engineer.headers)).json()
    assert detail["results"] == [
        {
            "engine": "tensorrt_fp16",
            "batch_size": 1,
            "status": "unavailable",
            "metrics": {},
            "intervals": {},
            "details": {},
            "error": "TensorRT is not installed",
        }
    ]


async def test_unknown_benchmarks_are_404(
    api: InProcessApi, engineer: Caller, ready_model: str
) -> None:
    missing = await api.http.get(f"{BENCHMARKS}/nope", headers=engineer.headers)
    assert missing.status_code == 404
    assert "no benchmark with id nope" in error_of(missing, NotFound)["message"]
    of_missing_model = await api.http.get(
        "/api/v1/models/nope/benchmarks", headers=engineer.headers
    )
    assert of_missing_model.status_code == 404
