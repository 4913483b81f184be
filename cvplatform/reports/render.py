"""One entry point for every format of both views: a pure function of the report's input."""

from __future__ import annotations

from cvplatform.reports.content import View, view_document
from cvplatform.reports.data_formats import report_csv, report_json
from cvplatform.reports.inputs import ReportInput
from cvplatform.schemas import ReportFormat

Format = ReportFormat
FORMATS: tuple[Format, ...] = ("pdf", "html", "json", "csv")
VIEWS: tuple[View, ...] = ("technical", "simple")
MEDIA_TYPES: dict[Format, str] = {
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}


def render(report: ReportInput, view: View, format: Format) -> bytes:
    """The report's ``view`` as ``format``: the same input gives the same bytes."""
    if format == "json":
        return report_json(report, view)
    if format == "csv":
        return report_csv(report, view)
    document = view_document(report, view)
    if format == "html":
        from cvplatform.reports.html import render_html

        return render_html(document)
    from cvplatform.reports.pdf import render_pdf  # reportlab loads only for a PDF

    return render_pdf(document)


def filename(report: ReportInput, view: View, format: Format) -> str:
    """``report-<model>-<view>-<id8>.<format>``: safe in a Content-Disposition header."""
    slug = "".join(c if c.isalnum() else "-" for c in report.model.name.lower()).strip("-")
    return f"report-{slug[:40] or 'model'}-{view}-{report.report_id[:8]}.{format}"
