"""Writes for reports: one per completed benchmark, its input gathered and kept in one step."""

from __future__ import annotations

from typing import ClassVar

from cvplatform import __version__
from cvplatform.errors import Conflict
from store import queries
from store.records import ReportRecord, encode_json
from store.report_inputs import gather_report_input
from store.writer_base import WriterBase


class ReportWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset({"create_report"})

    def create_report(self, benchmark_id: str, report_id: str) -> ReportRecord:
        """Keep the report of a completed benchmark (an existing one is returned as it is).

        Raises:
            RecordNotFound: no such benchmark, or its model is gone.
            Conflict: the benchmark has not completed.
        """
        existing = queries.report_of_benchmark(self._db, benchmark_id)
        if existing is not None:
            return existing
        job = queries.required(queries.job_by_id, self._db, benchmark_id, "benchmark")
        if job.kind != "benchmark" or job.status != "completed":
            raise Conflict(
                f"job {benchmark_id} is a {job.status} {job.kind}, not a completed benchmark"
            )
        created_at = self._now()
        report = gather_report_input(self._db, benchmark_id, report_id, created_at, __version__)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO reports (id, benchmark_id, model_id, created_at, input)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    report_id,
                    benchmark_id,
                    report.model.id,
                    created_at,
                    encode_json(report.model_dump(mode="json")),
                ],
            )
        return queries.required(queries.report_by_id, self._db, report_id, "report")
