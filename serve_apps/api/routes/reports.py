"""Reports: kept when a benchmark completes, rendered on request in either view and any format
from the data they keep (never by measuring again)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cvplatform.errors import RecordNotFound
from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.render import MEDIA_TYPES, Format, filename, render
from cvplatform.schemas import ReportOut, ReportPage, ReportView
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.params import Limit, Offset
from serve_apps.api.state import ReadDb
from serve_apps.auth.policy import Action
from store import queries
from store.records import ReportRecord

router = APIRouter(route_class=GuardedRoute, tags=["reports"])
_RENDERED: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media: {} for media in MEDIA_TYPES.values()},
        "description": "the report in the format asked for",
    }
}


def report_out(report: ReportRecord) -> ReportOut:
    model = report.input.get("model", {})
    selection = report.input.get("benchmark", {}).get("result", {})
    return ReportOut(
        id=report.id,
        benchmark_id=report.benchmark_id,
        model_id=report.model_id,
        model_name=str(model.get("name", "")),
        created_at=report.created_at,
        selected=selection.get("selected"),
    )


async def _rendered(report: ReportRecord, view: ReportView, format: Format) -> Response:
    data = ReportInput.model_validate(report.input)
    # A PDF takes a while to lay out: off the event loop.
    body = await run_in_threadpool(render, data, view, format)
    disposition = "inline" if format in ("html", "json") else "attachment"
    return Response(
        body,
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename(data, view, format)}"'
        },
    )


@router.get("/api/v1/reports", **requires(Action.RESOURCES_READ))
async def list_reports(
    db: ReadDb, model_id: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> ReportPage:
    """Reports, newest first."""
    page = queries.list_reports(db, {"model_id": model_id or ""}, limit, offset)
    return ReportPage(
        items=[report_out(r) for r in page.items], total=page.total, limit=limit, offset=offset
    )


@router.get(
    "/api/v1/reports/{report_id}",
    response_class=Response,
    responses=_RENDERED,
    **requires(Action.RESOURCES_READ),
)
async def get_report(
    report_id: str, db: ReadDb, view: ReportView = "technical", format: Format = "html"
) -> Response:
    """The report as ``view`` (technical or simple) in ``format`` (pdf, html, json, csv)."""
    return await _rendered(
        queries.required(queries.report_by_id, db, report_id, "report"), view, format
    )


@router.get(
    "/api/v1/benchmarks/{benchmark_id}/report",
    response_class=Response,
    responses=_RENDERED,
    **requires(Action.RESOURCES_READ),
)
async def benchmark_report(
    benchmark_id: str, db: ReadDb, view: ReportView = "technical", format: Format = "html"
) -> Response:
    """The benchmark's report (there is one once it has completed)."""
    report = queries.report_of_benchmark(db, benchmark_id)
    if report is None:
        queries.required(queries.job_by_id, db, benchmark_id, "benchmark")
        raise RecordNotFound(
            f"benchmark {benchmark_id} has no report: a report is made when a benchmark completes"
        )
    return await _rendered(report, view, format)


@router.get("/api/v1/models/{model_id}/reports", **requires(Action.RESOURCES_READ))
async def model_reports(
    model_id: str, db: ReadDb, limit: Limit = 50, offset: Offset = 0
) -> ReportPage:
    """The model's reports, newest first (kept even after the model is deleted)."""
    page = queries.list_reports(db, {"model_id": model_id}, limit, offset)
    if page.total == 0:
        queries.required(queries.model_by_id, db, model_id, "model")
    return ReportPage(
        items=[report_out(r) for r in page.items], total=page.total, limit=limit, offset=offset
    )
