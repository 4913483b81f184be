"""The benchmark harness against a plain timed loop, in the same run, on the same model and inputs.

Prints JSON:
- ``harness_vs_plain``: the platform's ONNX Runtime CPU mean latency for EfficientNet-B0 at batch 1
  and 8 (the benchmark job's own code, run in this process over a real store) against a plain
  ``session.run`` loop timed with ``perf_counter``; the target ratio is 0.95-1.05. The two
  alternate, platform first then plain, ``--rounds`` times, and the ratio is of their medians, so
  a slow minute of this noisy machine falls on both.
- ``repeatability``: three repeated platform benchmarks of EfficientNet-B0 at batch 1: each run's
  p95 and mean with the run's own 95% interval for p95, and the spread across runs.
- ``int8_vs_fp32``: ResNet50 at batch 8, INT8 (static, calibrated on seeded inputs) against FP32
  throughput, measured in one benchmark.

    .venv/bin/python bench/harness_accuracy.py [--iterations 200] [--rounds 3]

The models are torchvision's architectures with seeded random weights, exported to ONNX here:
latency does not depend on the weights' values, and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from actors.jobs.registry import queued_job, run_to_end  # noqa: E402
from cvplatform.benchmarking.inputs import seeded_inputs  # noqa: E402
from store import queries  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.jobs_kit import WriterStore, ready_onnx_model, reporter_for, settings_in  # noqa: E402

SHAPE = (3, 224, 224)
WARMUP = 20


def export(architecture: str, path: Path) -> Path:
    import torch
    from torchvision import models

    torch.manual_seed(0)
    module = models.get_model(architecture, weights=None).eval()
    torch.onnx.export(
        module,
        (torch.zeros(1, *SHAPE),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


class Platform:
    """The benchmark job's code over a real store in a temporary folder (no Ray: the figures are
    the harness's, not the scheduler's)."""

    def __init__(self, folder: Path) -> None:
        self.settings = settings_in(folder)
        self.store = WriterStore(StoreWriter(self.settings.db_path))

    def model(self, onnx_file: Path) -> str:
        return ready_onnx_model(self.settings, self.store, onnx_file)

    def benchmark(self, model_id: str, **request: Any) -> list[Any]:
        job_id = uuid.uuid4().hex
        body = {"model_id": model_id, "warmup_iterations": WARMUP, "seed": 0, **request}
        self.store.writer.enqueue_job(
            {
                "id": job_id,
                "kind": "benchmark",
                "name": "bench",
                "model_id": model_id,
                "request": body,
            },
            max_queued=99,
        )
        job = queued_job(self.store.writer.claim_job(job_id))
        reporter = reporter_for(self.settings, job, self.store)
        try:
            outcome = run_to_end(job, reporter)
        finally:
            reporter.close()
        if outcome.status != "completed":
            raise RuntimeError(f"the benchmark ended {outcome.status}: {outcome.reason}")
        return queries.benchmark_results(self.store.writer._db, job_id)


def plain_mean_ms(onnx_file: Path, batch_size: int, iterations: int) -> float:
    """The baseline: a session as ONNX Runtime's own examples make it, and a timed loop."""
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = seeded_inputs(0, batch_size, SHAPE)
    for _ in range(WARMUP + 1):
        session.run(None, {name: batch})
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        session.run(None, {name: batch})
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.mean(samples))


def harness_vs_plain(
    platform: Platform, onnx_file: Path, model_id: str, iterations: int, rounds: int
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for batch_size in (1, 8):
        harness, plain = [], []
        for _ in range(rounds):
            (row,) = platform.benchmark(
                model_id,
                engines=["onnxruntime_cpu"],
                batch_sizes=[batch_size],
                iterations=iterations,
            )
            harness.append(row.metrics["latency_mean_ms"])
            plain.append(plain_mean_ms(onnx_file, batch_size, iterations))
        figures[f"batch_{batch_size}"] = {
            "platform_mean_ms": [round(value, 3) for value in harness],
            "plain_loop_mean_ms": [round(value, 3) for value in plain],
            "ratio_of_medians": round(statistics.median(harness) / statistics.median(plain), 4),
        }
    return figures


def repeatability(platform: Platform, model_id: str, iterations: int) -> dict[str, Any]:
    runs = []
    for _ in range(3):
        (row,) = platform.benchmark(
            model_id, engines=["onnxruntime_cpu"], batch_sizes=[1], iterations=iterations
        )
        runs.append(
            {
                "p95_ms": round(row.metrics["latency_p95_ms"], 3),
                "p95_ci_ms": [round(value, 3) for value in row.intervals["latency_p95_ms"]],
                "mean_ms": round(row.metrics["latency_mean_ms"], 3),
            }
        )
    p95s = [run["p95_ms"] for run in runs]
    means = [run["mean_ms"] for run in runs]
    widest_ci = max(run["p95_ci_ms"][1] - run["p95_ci_ms"][0] for run in runs)
    return {
        "runs": runs,
        "p95_spread_ms": round(max(p95s) - min(p95s), 3),
        "p95_spread_percent": round((max(p95s) - min(p95s)) / statistics.median(p95s) * 100, 2),
        "mean_spread_percent": round((max(means) - min(means)) / statistics.median(means) * 100, 2),
        "widest_p95_ci_ms": round(widest_ci, 3),
        # The runs agree within the benchmark's own spread when one p95 fits every run's interval.
        "p95_intervals_share_a_value": max(run["p95_ci_ms"][0] for run in runs)
        <= min(run["p95_ci_ms"][1] for run in runs),
        "p95s_within_each_others_ci": all(
            other["p95_ci_ms"][0] <= run["p95_ms"] <= other["p95_ci_ms"][1]
            for run in runs
            for other in runs
        ),
    }


def int8_vs_fp32(platform: Platform, model_id: str, iterations: int) -> dict[str, Any]:
    rows = platform.benchmark(
        model_id,
        engines=["onnxruntime_cpu", "onnxruntime_cpu_int8"],
        batch_sizes=[8],
        iterations=iterations,
    )
    by_engine = {row.engine: row for row in rows}
    fp32, int8 = by_engine["onnxruntime_cpu"], by_engine["onnxruntime_cpu_int8"]
    if int8.status != "completed":
        return {"int8": int8.status, "error": int8.error}
    return {
        "fp32_throughput_fps": round(fp32.metrics["throughput_fps"], 2),
        "int8_throughput_fps": round(int8.metrics["throughput_fps"], 2),
        "int8_over_fp32": round(int8.metrics["throughput_fps"] / fp32.metrics["throughput_fps"], 3),
        "int8_setup": int8.details["setup"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        platform = Platform(folder / "data")
        efficientnet = export("efficientnet_b0", folder / "efficientnet_b0.onnx")
        resnet50 = export("resnet50", folder / "resnet50.onnx")
        efficientnet_id, resnet50_id = platform.model(efficientnet), platform.model(resnet50)
        report = {
            "machine": {"logical_cores": os.cpu_count(), "onnxruntime": ort.__version__},
            "iterations": arguments.iterations,
            "harness_vs_plain": harness_vs_plain(
                platform, efficientnet, efficientnet_id, arguments.iterations, arguments.rounds
            ),
            "repeatability": repeatability(platform, efficientnet_id, arguments.iterations),
            "int8_vs_fp32": int8_vs_fp32(platform, resnet50_id, max(20, arguments.iterations // 4)),
        }
        platform.store.writer.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
