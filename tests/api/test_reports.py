"""Reports over HTTP in-process: a real benchmark (the job's own code, run here on a toy model
with real ONNX Runtime) completes, its report is kept, and every view and format comes back;
bad requests get their errors. How each format looks is tested in ``tests/reports/``."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from actors.jobs.registry import queued_job, run_to_end
from actors.jobs.reporter import JobReporter
from cvplatform.errors import NotFound, PermissionDenied
from cvplatform.reports.data_formats import report_json_schema
from tests import models_kit
from tests.api.test_benchmark_requests import BENCHMARKS
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


class _Store:
    """The in-process store's synchronous side, as a job's reporter calls it."""

    def __init__(self, api: InProcessApi) -> None:
        self.api = api

    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any:
        return self.api.store.run_sync(operation, **kwargs)


async def _benchmarked(api: InProcessApi, engineer: Caller, tmp_path: Path) -> dict[str, Any]:
    """A toy model uploaded, made ready, and benchmarked for real (its job run here)."""
    from actors.models.onnx_inspect import inspect_onnx

    path = models_kit.onnx_classifier(tmp_path / "tiny.onnx")
    upload = await api.upload_model(
        engineer.headers, path, path.name, unique("tiny"), "classification"
    )
    model_id = upload.json()["id"]
    api.store.run_sync(
        "finish_conversion", model_id=model_id, onnx=None, details={"summary": inspect_onnx(path)}
    )
    body = {
        "model_id": model_id,
        "engines": ["onnxruntime_cpu", "tensorrt_fp16"],
        "batch_sizes": [1, 2],
        "warmup_iterations": 1,
        "iterations": 5,
        "constraints": [{"metric": "latency_p95_ms", "op": "<", "value": 10_000}],
    }
    queued = (await api.http.post(BENCHMARKS, headers=engineer.headers, json=body)).json()
    record = api.store.run_sync("claim_job", job_id=queued["id"])
    job = queued_job(record)
    reporter = JobReporter(api.settings, job, _Store(api))
    try:
        assert run_to_end(job, reporter).status == "completed"
    finally:
        reporter.close()
    return dict(
        (await api.http.get(f"{BENCHMARKS}/{queued['id']}", headers=engineer.headers)).json()
    )


@pytest.fixture
async def benchmark(api: InProcessApi, engineer: Caller, tmp_path: Path) -> dict[str, Any]:
    return await _benchmarked(api, engineer, tmp_path)


async def test_a_completed_benchmark_has_a_report_in_every_view_and_format(
    api: InProcessApi, engineer: Caller, benchmark: dict[str, Any]
) -> None:
    report_id = benchmark["report_id"]
    assert report_id
    listed = (await api.http.get("/api/v1/reports", headers=engineer.headers)).json()
    assert [item["id"] for item in listed["items"]] == [report_id]
    assert listed["items"][0]["benchmark_id"] == benchmark["id"]
    of_model = await api.http.get(
        f"/api/v1/models/{benchmark['model_id']}/reports", headers=engineer.headers
    )
    assert of_model.json()["total"] == 1

    for view in ("technical", "simple"):
        pdf = await api.http.get(
            f"/api/v1/reports/{report_id}",
            params={"view": view, "format": "pdf"},
            headers=engineer.headers,
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
        assert "attachment" in pdf.headers["content-disposition"]
        html = await api.http.get(
            f"/api/v1/benchmarks/{benchmark['id']}/report",
            params={"view": view, "format": "html"},
            headers=engineer.headers,
        )
        assert html.status_code == 200 and html.text.lstrip().lower().startswith("<!doctype html")
        document = await api.http.get(
            f"/api/v1/reports/{report_id}",
            params={"view": view, "format": "json"},
            headers=engineer.headers,
        )
        jsonschema.validate(document.json(), report_json_schema())
        table = await api.http.get(
            f"/api/v1/reports/{report_id}",
            params={"view": view, "format": "csv"},
            headers=engineer.headers,
        )
        assert table.headers["content-type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(table.text)))

    again = await api.http.get(
        f"/api/v1/reports/{report_id}", params={"format": "pdf"}, headers=engineer.headers
    )
    first = await api.http.get(
        f"/api/v1/reports/{report_id}", params={"format": "pdf"}, headers=engineer.headers
    )
    assert again.content == first.content  # rebuilt from the same stored data: the same bytes


async def test_the_report_says_what_was_measured(
    api: InProcessApi, engineer: Caller, benchmark: dict[str, Any]
) -> None:
    document = (
        await api.http.get(
            f"/api/v1/reports/{benchmark['report_id']}",
            params={"format": "json"},
            headers=engineer.headers,
        )
    ).json()
    text = json.dumps(document)
    assert benchmark["report_id"] in text
    assert "TensorRT" in text  # unavailable here, and the report says so


@pytest.mark.parametrize(
    ("params", "location"),
    [({"view": "fancy"}, "query.view"), ({"format": "docx"}, "query.format")],
)
async def test_bad_views_and_formats_are_422(
    api: InProcessApi, engineer: Caller, params: dict[str, str], location: str
) -> None:
    answer = await api.http.get("/api/v1/reports/any", params=params, headers=engineer.headers)
    assert answer.status_code == 422
    assert [field["location"] for field in error_of(answer)["fields"]] == [location]


async def test_missing_reports_are_404_with_the_reason(
    api: InProcessApi, engineer: Caller, tmp_path: Path
) -> None:
    missing = await api.http.get(f"/api/v1/reports/{uuid.uuid4().hex}", headers=engineer.headers)
    assert missing.status_code == 404
    error_of(missing, NotFound)
    of_missing_model = await api.http.get("/api/v1/models/nope/reports", headers=engineer.headers)
    assert of_missing_model.status_code == 404
    path = models_kit.onnx_classifier(tmp_path / "queued.onnx")
    upload = await api.upload_model(
        engineer.headers, path, path.name, unique("q"), "classification"
    )
    from actors.models.onnx_inspect import inspect_onnx

    api.store.run_sync(
        "finish_conversion",
        model_id=upload.json()["id"],
        onnx=None,
        details={"summary": inspect_onnx(path)},
    )
    queued = await api.http.post(
        BENCHMARKS, headers=engineer.headers, json={"model_id": upload.json()["id"]}
    )
    not_yet = await api.http.get(
        f"/api/v1/benchmarks/{queued.json()['id']}/report", headers=engineer.headers
    )
    assert not_yet.status_code == 404
    assert "a report is made when a benchmark completes" in error_of(not_yet, NotFound)["message"]


async def test_a_viewer_cannot_read_reports(api: InProcessApi, viewer: Caller) -> None:
    answer = await api.http.get("/api/v1/reports", headers=viewer.headers)
    assert answer.status_code == 403
    error_of(answer, PermissionDenied)
