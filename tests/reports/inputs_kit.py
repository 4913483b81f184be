"""Report inputs built by hand, shaped exactly as a stored benchmark is (actors/benchmarks/job.py).

The latencies are illustrative figures typed in for tests, not a measurement (the measured example
is tests/reports/fixtures/report_input.json); they are kept self-consistent: p50 <= p95 <= p99,
each interval around its estimate, throughput = batch size x 1000 / mean latency. The selection
and its verdicts are computed by the platform's own ``select``, as the benchmark job does.

- ``example_input()``: ResNet18 trained here on the digits sample; FP32 and INT8 on the CPU at
  batch 1 and 8; CUDA and TensorRT unavailable; two constraints; INT8 at batch 1 selected.
- ``nothing_passes_input()``: the same measurements under constraints none of them meets.
- ``no_accuracy_input()``: an uploaded model (no dataset, no training): no accuracy anywhere.
- ``interrupted_input()``: INT8 failed, FP32 at batch 8 cancelled, no selection stored.
- ``every_input()``: all of these by name, and each input stored under tests/reports/fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from cvplatform.benchmarking.constraints import Constraint
from cvplatform.benchmarking.selection import Candidate, select
from cvplatform.benchmarking.stats import Interval
from cvplatform.reports.inputs import (
    BenchmarkInput,
    DatasetInput,
    ModelInput,
    ReportInput,
    ResultRow,
    TrainingInput,
)

NO_GPU = "no GPU: NVML could not start (NVML Shared Library Not Found); no NVIDIA driver here"
NO_ACCURACY = (
    "not measured: the model was not trained here, so no labelled dataset goes with it "
    "(accuracy is measured on the validation split of the dataset a model was trained on)"
)
ACCURACY_SOURCE = "validation split of dataset digits-sample [ds_7f3a] (360 samples)"
EXAMPLE_CONSTRAINTS = (("latency_p95_ms", "<", 10.0), ("accuracy_drop_pp", "<=", 1.0))
STRICT_CONSTRAINTS = (("latency_p95_ms", "<", 2.5), ("accuracy_drop_pp", "<=", 0.1))

# engine, batch: mean, p50, p95, p99, min, max, std (ms), p95 CI, p99 CI, CPU %, host MB, setup s,
# cold ms
_LATENCIES: dict[tuple[str, int], tuple[Any, ...]] = {
    ("onnxruntime_cpu", 1): (
        4.12,
        4.05,
        4.71,
        5.38,
        3.86,
        6.02,
        0.29,
        (4.58, 4.86),
        (5.07, 5.71),
        96.4,
        312.4,
        0.214,
        9.87,
    ),
    ("onnxruntime_cpu", 8): (
        21.35,
        21.1,
        23.42,
        25.06,
        20.31,
        26.4,
        0.98,
        (22.9, 23.95),
        (24.2, 25.9),
        97.9,
        341.7,
        0.214,
        31.2,
    ),
    ("onnxruntime_cpu_int8", 1): (
        2.61,
        2.55,
        3.02,
        3.49,
        2.41,
        4.11,
        0.21,
        (2.93, 3.12),
        (3.3, 3.7),
        95.1,
        288.9,
        3.87,
        6.2,
    ),
    ("onnxruntime_cpu_int8", 8): (
        12.84,
        12.7,
        14.05,
        15.2,
        12.1,
        16.3,
        0.55,
        (13.8, 14.3),
        (14.7, 15.8),
        97.2,
        301.2,
        3.87,
        18.4,
    ),
}
# engine: accuracy %, drop pp against FP32, agreement %
_ACCURACY = {"onnxruntime_cpu": (97.22, 0.0, 100.0), "onnxruntime_cpu_int8": (96.94, 0.28, 98.89)}
_UNAVAILABLE = {"onnxruntime_cuda": NO_GPU, "tensorrt_fp16": NO_GPU}
_ENGINES = {
    "onnxruntime_cpu": ("ONNX Runtime CPU FP32", "fp32", "cpu"),
    "onnxruntime_cpu_int8": ("ONNX Runtime CPU INT8", "int8", "cpu"),
    "onnxruntime_cuda": ("ONNX Runtime CUDA", "fp32", "cuda"),
    "tensorrt_fp16": ("TensorRT FP16", "fp16", "cuda"),
}


def example_input(
    constraints: tuple[tuple[str, str, float], ...] = EXAMPLE_CONSTRAINTS,
    *,
    with_accuracy: bool = True,
    objective: str = "latency",
    overrides: Mapping[tuple[str, int], Mapping[str, Any]] | None = None,
) -> ReportInput:
    """The example report input; ``constraints`` as (metric, op, value); ``overrides`` changes
    the metrics or intervals of (engine, batch size) rows before the selection is made, e.g.
    ``{("onnxruntime_cpu_int8", 1): {"metrics": {"latency_p95_ms": 5.0}}}``."""
    rows = [
        _overridden(
            _measured_row(engine, batch, with_accuracy), (overrides or {}).get((engine, batch))
        )
        for engine, batch in _LATENCIES
    ]
    rows += [_unavailable_row(engine, batch) for engine in _UNAVAILABLE for batch in (1, 8)]
    return ReportInput(
        report_id="rep_0d9e6c1b2a",
        created_at="2025-06-02T09:30:00+00:00",
        platform_version="0.12.0",
        benchmark=_benchmark(rows, constraints, with_accuracy, objective),
        model=_model(with_accuracy),
        dataset=_dataset() if with_accuracy else None,
        training=_training() if with_accuracy else None,
    )


def nothing_passes_input() -> ReportInput:
    return example_input(STRICT_CONSTRAINTS)


def no_accuracy_input() -> ReportInput:
    return example_input((("latency_p95_ms", "<", 10.0),), with_accuracy=False)


def _measured_row(engine: str, batch_size: int, with_accuracy: bool) -> ResultRow:
    mean, p50, p95, p99, low, high, std, p95_ci, p99_ci, cpu, memory, setup, cold = _LATENCIES[
        (engine, batch_size)
    ]
    throughput = batch_size * 1000.0 / mean
    accuracy, drop, agreement = _ACCURACY[engine] if with_accuracy else (None, None, None)
    metrics: dict[str, float | None] = {
        "latency_mean_ms": mean,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "latency_min_ms": low,
        "latency_max_ms": high,
        "latency_std_ms": std,
        "throughput_fps": throughput,
        "cpu_percent": cpu,
        "machine_cpu_percent": min(100.0, cpu + 1.5),
        "host_memory_mb": memory,
        "gpu_percent": None,
        "vram_mb": None,
        "setup_s": setup,
        "cold_ms": cold,
        "accuracy_percent": accuracy,
        "accuracy_drop_pp": drop,
        "agreement_percent": agreement,
    }
    intervals = {
        "latency_p95_ms": p95_ci,
        "latency_p99_ms": p99_ci,
        "throughput_fps": (throughput * 0.985, throughput * 1.015),
    }
    details = {
        "setup": {"kind": "session_creation", "seconds": setup, "threads": None},
        "cold_run_ms": cold,
        "warmup_iterations": 20,
        "measured_iterations": 200,
        "percentile_method": "linear",
        "resources": {"samples": 12, "gpu_unavailable_reason": NO_GPU},
        "accuracy": {
            "source": ACCURACY_SOURCE if with_accuracy else NO_ACCURACY,
            "reference": "onnxruntime_cpu",
        },
    }
    return ResultRow(
        engine=engine,
        batch_size=batch_size,
        status="completed",
        metrics=metrics,
        intervals=intervals,
        details=details,
        error=None,
    )


def _overridden(row: ResultRow, changes: Mapping[str, Any] | None) -> ResultRow:
    if not changes:
        return row
    metrics = {**row.metrics, **changes.get("metrics", {})}
    intervals = {**row.intervals, **changes.get("intervals", {})}
    return row.model_copy(update={"metrics": metrics, "intervals": intervals})


def _unavailable_row(engine: str, batch_size: int) -> ResultRow:
    return ResultRow(
        engine=engine,
        batch_size=batch_size,
        status="unavailable",
        metrics={},
        intervals={},
        details={},
        error=_UNAVAILABLE[engine],
    )


def _benchmark(
    rows: list[ResultRow],
    constraints: tuple[tuple[str, str, float], ...],
    with_accuracy: bool,
    objective: str,
) -> BenchmarkInput:
    checked = [Constraint(metric, op, value) for metric, op, value in constraints]
    candidates = [
        Candidate(
            r.engine,
            r.batch_size,
            r.metrics,
            {name: Interval(*pair) for name, pair in r.intervals.items()},
        )
        for r in rows
        if r.status == "completed"
    ]
    selection = select(candidates, checked, objective, _UNAVAILABLE)  # type: ignore[arg-type]
    request = {
        "model_id": "mdl_resnet18_digits",
        "engines": list(_ENGINES),
        "batch_sizes": [1, 8],
        "input_shape": None,
        "warmup_iterations": 20,
        "iterations": 200,
        "seed": 0,
        "cpu_threads": None,
        "constraints": [{"metric": m, "op": op, "value": v} for m, op, v in constraints],
        "objective": objective,
    }
    result = {
        "environment": _environment(),
        "input_shape": [3, 64, 64],
        "engines": {name: _engine(name) for name in _ENGINES},
        "accuracy_source": ACCURACY_SOURCE if with_accuracy else NO_ACCURACY,
        "constraints": [str(c) for c in checked],
        "objective": objective,
        "percentile_method": "linear",
        "selection": selection.as_dict(),
        "selected": selection.selected,
        "combinations": 8,
        "duration_s": 41.7,
    }
    return BenchmarkInput(
        id="job_bench_5c21",
        request=request,
        result=result,
        results=rows,
        started_at="2025-06-02T09:28:51+00:00",
        finished_at="2025-06-02T09:29:33+00:00",
    )


def _engine(name: str) -> dict[str, Any]:
    label, precision, device = _ENGINES[name]
    reason = _UNAVAILABLE.get(name)
    versions = (
        {"tensorrt": "not installed"} if name == "tensorrt_fp16" else {"onnxruntime": "1.20.1"}
    )
    return {
        "label": label,
        "precision": precision,
        "device": device,
        "available": reason is None,
        "reason": reason,
        "versions": versions,
    }


def _environment() -> dict[str, Any]:
    unavailable = f"unavailable: {NO_GPU}"
    return {
        "cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz",
        "logical_cores": 2,
        "physical_cores": 1,
        "memory_mb": 7951,
        "os": "Linux-6.1.0-x86_64-with-glibc2.36",
        "python": "3.11.2",
        "numpy": "1.26.4",
        "onnxruntime": "1.20.1",
        "tensorrt": "not installed",
        "gpu_name": unavailable,
        "gpu_driver": unavailable,
        "cuda_driver": unavailable,
    }


def _model(trained_here: bool) -> ModelInput:
    return ModelInput(
        id="mdl_resnet18_digits",
        name="ResNet18 digits",
        framework="pytorch",
        task_type="classification",
        architecture="resnet18",
        input_shape=[3, 64, 64],
        num_classes=10,
        source_sha256="4f1c" + "0" * 56 + "9a2e",
        onnx_sha256="b7d2" + "1" * 56 + "03c8",
        parent_model_id=None,
        preset="resnet18" if trained_here else None,
    )


def _dataset() -> DatasetInput:
    return DatasetInput(
        id="ds_7f3a",
        name="digits-sample",
        content_hash="c0ffee" + "2" * 58,
        num_samples=1797,
        num_classes=10,
        task_type="classification",
    )


def _training() -> TrainingInput:
    return TrainingInput(
        job_id="job_train_91b0",
        split_seed=0,
        validation_split=0.2,
        epochs=5,
        final_accuracy=0.9722,
        best_val_accuracy=0.975,
    )


def interrupted_input() -> ReportInput:
    """The example as a benchmark that ended early: INT8 failed, FP32 at batch 8 was cancelled
    mid-run, and no selection was stored."""
    report = example_input()
    rows = []
    for row in report.benchmark.results:
        if row.engine == "onnxruntime_cpu_int8":
            error = "the engine could not load the model: RuntimeError: bad graph"
            empty: dict[str, Any] = {"metrics": {}, "intervals": {}, "details": {}}
            row = row.model_copy(update={"status": "failed", "error": error, **empty})
        elif (row.engine, row.batch_size) == ("onnxruntime_cpu", 8):
            row = row.model_copy(update={"status": "cancelled"})
        rows.append(row)
    result = {
        k: v for k, v in report.benchmark.result.items() if k not in ("selection", "selected")
    }
    benchmark = report.benchmark.model_copy(update={"results": rows, "result": result})
    return report.model_copy(update={"benchmark": benchmark})


FIXTURES = Path(__file__).parent / "fixtures"


def every_input() -> dict[str, Callable[[], ReportInput]]:
    """Every input the tests render: the hand-built ones, then each stored fixture."""
    inputs: dict[str, Callable[[], ReportInput]] = {
        "example": example_input,
        "nothing_passes": nothing_passes_input,
        "no_accuracy": no_accuracy_input,
        "interrupted": interrupted_input,
    }
    for path in sorted(FIXTURES.glob("*.json")):
        inputs[f"fixture:{path.stem}"] = partial(_stored, path)
    return inputs


def _stored(path: Path) -> ReportInput:
    return ReportInput.model_validate_json(path.read_text(encoding="utf-8"))
