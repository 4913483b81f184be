"""Seconds to render each format of both views for a benchmark of 4 engines x 5 batch sizes.

The benchmark is real: the benchmark job's own code runs here on a small ONNX classifier, every
engine at batch 1, 2, 4, 8 and 16 (those this machine lacks are stored unavailable, as they would
be), and its report input is gathered from the store as the platform keeps it. Each rendering is
timed ``--repeats`` times; the JSON gives the median and the fastest, and the bytes' size.

    .venv/bin/python bench/reports.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from actors.jobs.registry import queued_job, run_to_end  # noqa: E402
from cvplatform import __version__  # noqa: E402
from cvplatform.reports.render import FORMATS, VIEWS, render  # noqa: E402
from store.report_inputs import gather_report_input  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests import models_kit  # noqa: E402
from tests.jobs_kit import WriterStore, ready_onnx_model, reporter_for, settings_in  # noqa: E402

BATCH_SIZES = [1, 2, 4, 8, 16]


def benchmarked_input(folder: Path) -> Any:
    settings = settings_in(folder / "data")
    store = WriterStore(StoreWriter(settings.db_path))
    model_id = ready_onnx_model(settings, store, models_kit.onnx_classifier(folder / "m.onnx"))
    job_id = uuid.uuid4().hex
    request = {
        "model_id": model_id,
        "batch_sizes": BATCH_SIZES,
        "warmup_iterations": 5,
        "iterations": 50,
        "constraints": [
            {"metric": "latency_p95_ms", "op": "<", "value": 5},
            {"metric": "throughput_fps", "op": ">", "value": 2000},
        ],
    }
    store.writer.enqueue_job(
        {
            "id": job_id,
            "kind": "benchmark",
            "name": "bench",
            "model_id": model_id,
            "request": request,
        },
        max_queued=9,
    )
    job = queued_job(store.writer.claim_job(job_id))
    reporter = reporter_for(settings, job, store)
    try:
        outcome = run_to_end(job, reporter)
    finally:
        reporter.close()
    if outcome.status != "completed":
        raise RuntimeError(f"the benchmark ended {outcome.status}: {outcome.reason}")
    report = gather_report_input(
        store.writer._db, job_id, uuid.uuid4().hex, "2026-01-01T00:00:00Z", __version__
    )
    store.writer.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = benchmarked_input(Path(scratch))
    figures: dict[str, Any] = {}
    for view in VIEWS:
        for format in FORMATS:
            seconds, size = [], 0
            for _ in range(arguments.repeats):
                started = time.perf_counter()
                size = len(render(report, view, format))
                seconds.append(time.perf_counter() - started)
            figures[f"{view}.{format}"] = {
                "median_s": round(statistics.median(seconds), 4),
                "fastest_s": round(min(seconds), 4),
                "bytes": size,
            }
    rows = report.benchmark.results
    print(
        json.dumps(
            {
                "engines": sorted({row.engine for row in rows}),
                "batch_sizes": BATCH_SIZES,
                "results": len(rows),
                "measured": sum(row.status == "completed" for row in rows),
                "repeats": arguments.repeats,
                "render": figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
