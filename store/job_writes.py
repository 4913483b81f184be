"""Writes for jobs: the bounded FIFO queue, claiming, progress events, ends, cancellation,
and the alerts the queue raises."""

from __future__ import annotations

from typing import Any, ClassVar

from cvplatform.errors import Conflict, QueueFull
from store import queries
from store.records import JobRecord, encode_json
from store.writer_base import WriterBase

FINAL = ("completed", "failed", "cancelled")


class JobWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "enqueue_job",
            "claim_next_job",
            "claim_job",
            "set_job_device",
            "record_job_progress",
            "record_benchmark_result",
            "finish_job",
            "request_cancel",
            "fail_interrupted_jobs",
            "raise_alert",
        }
    )

    def _job(self, job_id: str) -> JobRecord:
        return queries.required(queries.job_by_id, self._db, job_id, "job")

    def enqueue_job(self, job: dict[str, Any], max_queued: int) -> JobRecord:
        """Queue a job at the end of the FIFO.

        Raises:
            QueueFull: ``max_queued`` jobs wait already; an alert is recorded, nothing queued.
        """
        with self._transaction() as db:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if waiting < max_queued:
                db.execute(
                    "INSERT INTO jobs (id, kind, name, status, owner_id, model_id, dataset_id,"
                    " request, created_at, parent_id) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                    [
                        job["id"],
                        job["kind"],
                        job["name"],
                        job.get("owner_id"),
                        job.get("model_id"),
                        job.get("dataset_id"),
                        encode_json(job["request"]),
                        self._now(),
                        job.get("parent_id"),
                    ],
                )
        if waiting >= max_queued:
            self.raise_alert(
                "gpu_queue_full",
                "warning",
                f"the GPU job queue is full ({waiting} waiting, the bound is {max_queued})",
                {"refused_job": job["name"]},
            )
            raise QueueFull(
                f"the GPU job queue is full ({waiting} jobs waiting, "
                f"CVP_GPU_QUEUE_MAX={max_queued}); try again when a job has started"
            )
        return self._job(job["id"])

    def claim_next_job(self) -> JobRecord | None:
        """The oldest queued job, now ``running``; None when the queue is empty."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?",
                [self._now(), row[0]],
            )
        return self._job(row[0])

    def claim_job(self, job_id: str) -> JobRecord | None:
        """This job, now ``running``, if it still waits in the queue; else None (it was
        cancelled or claimed meanwhile)."""
        with self._transaction() as db:
            claimed = db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?"
                " WHERE id = ? AND status = 'queued'",
                [self._now(), job_id],
            ).rowcount
        return self._job(job_id) if claimed else None

    def set_job_device(self, job_id: str, device: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET device = ? WHERE id = ?", [device, job_id])

    def record_job_progress(
        self, job_id: str, progress: dict[str, Any], event: dict[str, Any] | None = None
    ) -> None:
        """Replace the job's latest progress; an ``event`` (kind + payload) joins its stream."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", [encode_json(progress), job_id])
            if event is not None:
                db.execute(
                    "INSERT INTO job_events (job_id, at, kind, payload) VALUES (?, ?, ?, ?)",
                    [job_id, self._now(), event["kind"], encode_json(event["payload"])],
                )

    def record_benchmark_result(
        self,
        job_id: str,
        engine: str,
        batch_size: int,
        status: str,
        metrics: dict[str, float | None],
        intervals: dict[str, tuple[float, float]],
        details: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """Store (or replace) one engine at one batch size of a benchmark job.

        Raises:
            RecordNotFound: no such job.
        """
        self._job(job_id)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO benchmark_results (job_id, engine, batch_size, status, metrics,"
                " intervals, details, error, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, engine, batch_size) DO UPDATE SET status = excluded.status,"
                " metrics = excluded.metrics, intervals = excluded.intervals,"
                " details = excluded.details, error = excluded.error,"
                " recorded_at = excluded.recorded_at",
                [
                    job_id,
                    engine,
                    batch_size,
                    status,
                    encode_json(metrics),
                    encode_json(intervals),
                    encode_json(details),
                    error,
                    self._now(),
                ],
            )

    def finish_job(
        self,
        job_id: str,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> JobRecord:
        """End a job (``completed``, ``failed`` or ``cancelled``); an ended job keeps its end."""
        if status not in FINAL:
            raise ValueError(f"{status} is not a final status")
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?"
                " WHERE id = ? AND status NOT IN ('completed', 'failed', 'cancelled')",
                [
                    status,
                    encode_json(result) if result is not None else None,
                    error,
                    self._now(),
                    job_id,
                ],
            )
            db.execute(
                "INSERT INTO job_events (job_id, at, kind, payload) VALUES (?, ?, 'status', ?)",
                [job_id, self._now(), encode_json({"status": status, "error": error})],
            )
        return self._job(job_id)

    def request_cancel(self, job_id: str) -> JobRecord:
        """A queued job leaves the queue at once; a running one is asked to stop.

        Raises:
            Conflict: the job has ended already.
        """
        job = self._job(job_id)
        if job.status in FINAL:
            raise Conflict(f"job {job_id} is {job.status} already; there is nothing to cancel")
        if job.status == "queued":
            return self.finish_job(job_id, "cancelled", error="cancelled while queued")
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET cancel_requested_at = ?"
                " WHERE id = ? AND cancel_requested_at IS NULL",
                [self._now(), job_id],
            )
        return self._job(job_id)

    def fail_interrupted_jobs(self) -> list[str]:
        """At start: jobs that were running when the platform died end ``failed``."""
        with self._transaction() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs WHERE status = 'running'")]
        for job_id in ids:
            self.finish_job(
                job_id, "failed", error="interrupted: the platform stopped while it ran"
            )
        return ids

    def raise_alert(
        self, kind: str, severity: str, message: str, details: dict[str, Any] | None = None
    ) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO alerts (at, kind, severity, message, details) VALUES (?, ?, ?, ?, ?)",
                [self._now(), kind, severity, message, encode_json(details or {})],
            )
        return int(cursor.lastrowid or 0)
