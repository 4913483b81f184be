"""The SDK's calls for benchmarks (mixed into :class:`cvplatform.client.Client`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from cvplatform.benchmarking.constraints import parse_constraint
from cvplatform.schemas import (
    BenchmarkOut,
    BenchmarkPage,
    BenchmarkRequest,
    ConstraintIn,
    JobOut,
    ReportFormat,
    ReportPage,
    ReportView,
)


class BenchmarkCalls:
    # These come from Client, which mixes these calls in.
    _http: httpx.Client
    _request: Callable[..., Any]

    def start_benchmark(
        self,
        model_id: str,
        constraints: Sequence[str | dict[str, Any]] = (),
        **settings: Any,
    ) -> JobOut:
        """Queue a benchmark of a ready model; it starts when a GPU slot is free.

        Args:
            model_id: the model.
            constraints: ``"latency_p95_ms < 50"`` or ``{"metric", "op", "value"}`` each.
            settings: the rest of :class:`cvplatform.schemas.BenchmarkRequest` (``engines``,
                ``batch_sizes``, ``input_shape``, ``warmup_iterations``, ``iterations``, ``seed``,
                ``cpu_threads``, ``objective``).

        Returns:
            The queued job; follow it with ``job_events`` or ``wait_for_job``.

        Raises:
            ValueError: a constraint or setting that cannot be valid (nothing is sent).
            InvalidInput: the server refused the request (an input shape that does not fit).
            Conflict: the model is not ready.
            QueueFull: the GPU queue is at its bound (HTTP 429).
        """
        parsed = [
            ConstraintIn.model_validate(
                asdict(parse_constraint(item)) if isinstance(item, str) else item
            )
            for item in constraints
        ]
        request = BenchmarkRequest(model_id=model_id, constraints=parsed, **settings)
        body = request.model_dump(mode="json", exclude_unset=True)
        return JobOut.model_validate(self._request("POST", "/api/v1/benchmarks", json=body))

    def get_benchmark(self, benchmark_id: str) -> BenchmarkOut:
        """The benchmark with every engine and batch size measured so far; once completed, its
        ``result`` holds the environment, the verdicts and the selection."""
        return BenchmarkOut.model_validate(
            self._request("GET", f"/api/v1/benchmarks/{benchmark_id}")
        )

    def list_benchmarks(
        self,
        model_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> BenchmarkPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if model_id:
            params["model_id"] = model_id
        if status:
            params["status"] = status
        return BenchmarkPage.model_validate(
            self._request("GET", "/api/v1/benchmarks", params=params)
        )

    def list_reports(
        self, model_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> ReportPage:
        """Reports, newest first (one per completed benchmark)."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if model_id:
            params["model_id"] = model_id
        return ReportPage.model_validate(self._request("GET", "/api/v1/reports", params=params))

    def get_report(
        self, report_id: str, view: ReportView = "technical", format: ReportFormat = "html"
    ) -> bytes:
        """The report's ``view`` (technical or simple) as ``format`` (pdf, html, json, csv).

        Raises:
            NotFound: no such report.
        """
        response = self._http.get(
            f"/api/v1/reports/{report_id}", params={"view": view, "format": format}
        )
        if response.is_error:
            from cvplatform.client import error_from_response

            raise error_from_response(response)
        return response.content

    def save_report(
        self,
        report_id: str,
        path: str | Path,
        view: ReportView = "technical",
        format: ReportFormat = "pdf",
    ) -> Path:
        """Write the report's ``view`` as ``format`` to ``path``; returns the path."""
        target = Path(path)
        target.write_bytes(self.get_report(report_id, view, format))
        return target
