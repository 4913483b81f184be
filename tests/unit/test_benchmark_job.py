"""The benchmark job's code without Ray, on a real store and real ONNX Runtime with toy models:
what is stored per engine and batch size, engines that are unavailable or fail, the selection,
and cancellation mid-run."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from actors.benchmarks import job as benchmark_job
from actors.jobs.registry import Outcome, queued_job, run_to_end
from cvplatform.config import Settings
from cvplatform.gpu import GpuReport
from store import queries
from store.records import BenchmarkResultRecord
from store.writer import StoreWriter
from tests import models_kit
from tests.jobs_kit import WriterStore, ready_onnx_model, reporter_for

NO_GPU = GpuReport(False, "no GPU: the probe is mocked in this test")
QUICK = {"warmup_iterations": 1, "iterations": 5, "batch_sizes": [1, 2], "seed": 7}


@pytest.fixture(autouse=True)
def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a CUDA host the GPU engines would run: these tests are about this machine's answer.
    monkeypatch.setattr(benchmark_job, "probe_gpu", lambda: NO_GPU)


def _fails_past_batch_one(path: Path) -> Path:
    """Declares a dynamic batch but flattens to one row: batch 1 runs, batch 2 fails in Gemm."""
    weights = numpy_helper.from_array(np.ones((3 * 8 * 8, 4), np.float32), "weights")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "weights"], ["logits"]),
        ],
        "one_row",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [weights, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _run(
    settings: Settings, store: WriterStore, model_id: str, job_id: str = "", **request: Any
) -> tuple[Outcome, list[BenchmarkResultRecord], str]:
    job_id = job_id or uuid.uuid4().hex
    body = {"model_id": model_id, **QUICK, **request}
    store.writer.enqueue_job(
        {"id": job_id, "kind": "benchmark", "name": "bench", "model_id": model_id, "request": body},
        max_queued=10,
    )
    record = store.writer.claim_job(job_id)
    reporter = reporter_for(settings, queued_job(record), store)
    try:
        outcome = run_to_end(queued_job(record), reporter)
    finally:
        reporter.close()
    return outcome, queries.benchmark_results(store.writer._db, job_id), job_id


def test_every_engine_and_batch_size_is_stored_with_every_metric(
    settings: Settings, store: WriterStore, tmp_path: Path
) -> None:
    model_id = ready_onnx_model(settings, store, models_kit.onnx_classifier(tmp_path / "tiny.onnx"))
    constraints = [{"metric": "latency_p95_ms", "op": "<", "value": 10_000}]
    outcome, rows, _ = _run(settings, store, model_id, constraints=constraints)

    assert outcome.status == "completed", outcome.reason
    by_key = {(row.engine, row.batch_size): row for row in rows}
    assert set(by_key) == {
        (engine, batch)
        for engine in (
            "onnxruntime_cpu",
            "onnxruntime_cpu_int8",
            "onnxruntime_cuda",
            "tensorrt_fp16",
        )
        for batch in (1, 2)
    }
    for engine in ("onnxruntime_cuda", "tensorrt_fp16"):
        row = by_key[(engine, 1)]
        assert row.status == "unavailable" and row.error and row.metrics == {}
    for engine in ("onnxruntime_cpu", "onnxruntime_cpu_int8"):
        for batch in (1, 2):
            row = by_key[(engine, batch)]
            assert row.status == "completed", row.error
            metrics = row.metrics
            assert 0 < metrics["latency_min_ms"] <= metrics["latency_p50_ms"]  # type: ignore[operator]
            assert (
                metrics["latency_p50_ms"] <= metrics["latency_p99_ms"] <= metrics["latency_max_ms"]
            )  # type: ignore[operator]
            assert metrics["throughput_fps"] == pytest.approx(
                batch * 1000 / metrics["latency_mean_ms"]
            )  # type: ignore[operator]
            assert metrics["setup_s"] and metrics["cold_ms"]
            assert metrics["host_memory_mb"] is not None and metrics["host_memory_mb"] >= 0
            resources = row.details["resources"]
            assert resources["process_peak_rss_mb"] >= resources["rss_before_engine_mb"] > 0
            assert metrics["vram_mb"] is None and metrics["gpu_percent"] is None
            assert metrics["accuracy_percent"] is None  # no dataset goes with an uploaded model
            low, high = row.intervals["latency_p95_ms"]
            assert low <= metrics["latency_p95_ms"] <= high  # type: ignore[operator]
            assert row.details["measured_iterations"] == 5
            assert row.details["warmup_iterations"] == 1
            assert row.details["resources"]["gpu_unavailable_reason"] == NO_GPU.detail
    int8_setup = by_key[("onnxruntime_cpu_int8", 1)].details["setup"]
    assert "seeded random inputs (seed 7" in int8_setup["calibration_source"]

    result = outcome.result
    assert result["selected"] in {
        f"{e}@{b}" for e in ("onnxruntime_cpu", "onnxruntime_cpu_int8") for b in (1, 2)
    }
    assert result["constraints"] == ["latency_p95_ms < 10000"]
    assert result["engines"]["tensorrt_fp16"]["available"] is False
    assert result["environment"]["logical_cores"] >= 1
    assert [step["rule"] for step in result["selection"]["steps"]][:2] == [
        "constraints",
        "objective",
    ]


def test_an_unmeasurable_constraint_selects_nothing_and_names_the_closest(
    settings: Settings, store: WriterStore, tmp_path: Path
) -> None:
    model_id = ready_onnx_model(settings, store, models_kit.onnx_classifier(tmp_path / "tiny.onnx"))
    constraints = [{"metric": "accuracy_drop_pp", "op": "<=", "value": 1}]
    outcome, _, _ = _run(
        settings,
        store,
        model_id,
        engines=["onnxruntime_cpu"],
        batch_sizes=[1],
        constraints=constraints,
    )
    selection = outcome.result["selection"]
    assert outcome.result["selected"] is None
    assert selection["closest"] == "onnxruntime_cpu@1"
    verdict = selection["verdicts"]["onnxruntime_cpu@1"][0]
    assert verdict["passed"] is None and "not measured" in verdict["note"]


def test_an_engine_failing_mid_run_fails_that_combination_only(
    settings: Settings, store: WriterStore, tmp_path: Path
) -> None:
    model_id = ready_onnx_model(settings, store, _fails_past_batch_one(tmp_path / "one_row.onnx"))
    outcome, rows, _ = _run(settings, store, model_id, engines=["onnxruntime_cpu"])
    assert outcome.status == "completed"
    statuses = {row.batch_size: (row.status, row.error) for row in rows}
    assert statuses[1] == ("completed", None)
    assert statuses[2][0] == "failed" and "the run failed" in str(statuses[2][1])
    assert outcome.result["selected"] == "onnxruntime_cpu@1"


def test_cancelling_mid_run_stops_within_two_seconds_and_keeps_what_was_measured(
    settings: Settings, store: WriterStore, tmp_path: Path
) -> None:
    model_id = ready_onnx_model(settings, store, models_kit.onnx_classifier(tmp_path / "tiny.onnx"))
    ended: list[Outcome] = []
    job_id = uuid.uuid4().hex

    def benchmark() -> None:  # in a thread of its own, with its own connection to the store
        own = WriterStore(StoreWriter(store.writer.db_path))
        try:
            outcome, _, _ = _run(
                settings, own, model_id, job_id, engines=["onnxruntime_cpu"], iterations=100_000
            )
        finally:
            own.writer.close()
        ended.append(outcome)

    worker = threading.Thread(target=benchmark)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = queries.job_by_id(store.writer._db, job_id)
        if job and job.progress.get("iteration", 0) > 0:
            break
        time.sleep(0.05)
    asked = time.monotonic()
    store.writer.request_cancel(job_id)
    worker.join(timeout=10)
    assert time.monotonic() - asked < 2.0
    assert ended[0].status == "cancelled"
    rows = queries.benchmark_results(store.writer._db, job_id)
    assert [(row.batch_size, row.status) for row in rows] == [(1, "cancelled")]
    measured = rows[0].details["measured_iterations"]
    assert 0 < measured < 100_000 and rows[0].metrics["latency_p95_ms"]
    assert queries.job_by_id(store.writer._db, job_id).status == "cancelled"  # type: ignore[union-attr]
