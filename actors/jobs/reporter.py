"""What a running job reports through: progress and events, cancellation, reads and artifacts.

Plain code over a synchronous store client (the store actor's ``StoreClient`` in a worker; a
``StoreWriter`` adapter in tests). Progress, events and cancellation live on the job's own row,
so only ``tracked`` jobs have them; for the others they go to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import sqlite_utils

from actors.jobs.registry import Job, JobCancelled, Outcome
from cvplatform.config import Settings
from cvplatform.scrub import platform_scrubber
from store import queries
from store.artifacts import StoredFile, write_artifact
from store.connections import open_reader
from store.operations import StoreOperations

log = logging.getLogger("cvp.jobs")
_PROGRESS_EVERY_S = 1.0
_CANCEL_CHECK_EVERY_S = 0.25
Record = TypeVar("Record")


class SyncStore(Protocol):
    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any: ...


class FanOut(Protocol):
    """Runs a function over many argument tuples in parallel (Ray tasks in the platform)."""

    def map(self, function: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def workers(self) -> int: ...


class InProcess:
    """A fan-out that runs each call here, one after the other (tests, tools)."""

    def map(self, function: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [function(*arguments) for arguments in calls]

    def workers(self) -> int:
        return 1


class JobReporter:
    """The one channel between a job's plain code and the platform.

    Args:
        settings: the platform's settings (paths, limits).
        job: the job being run.
        store: the store, called synchronously.
        fan_out: how the job spreads work over the CPUs.
        submit: starts another job in the background (conversions of the models it registers).
        monotonic: the clock that rate-limits progress writes and cancellation checks.
    """

    def __init__(
        self,
        settings: Settings,
        job: Job,
        store: SyncStore,
        fan_out: FanOut | None = None,
        submit: Callable[[Job], object] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.job, self.store = settings, job, store
        self.ops = StoreOperations(store)
        # What the user reads (a failure's reason) never names the server's folders.
        self.scrub = platform_scrubber(settings)
        self.fan_out: FanOut = fan_out or InProcess()
        self._submit = submit
        self._monotonic = monotonic
        self._reader: sqlite_utils.Database | None = None
        self._progress: dict[str, Any] = {}
        self._last_write = self._last_check = float("-inf")
        self._stop_requested = False

    # --- reading ------------------------------------------------------------------------------

    @property
    def reader(self) -> sqlite_utils.Database:
        """A read-only connection kept for the job's lifetime."""
        if self._reader is None:
            self._reader = open_reader(self.settings.db_path)
        return self._reader

    def read(
        self,
        query: Callable[[sqlite_utils.Database, str], Record | None],
        record_id: str,
        noun: str,
    ) -> Record:
        """One record by id (``noun`` names it in the error).

        Raises:
            RecordNotFound: it no longer exists.
        """
        return queries.required(query, self.reader, record_id, noun)

    # --- progress, events, cancellation -----------------------------------------------------

    def progress(self, **fields: Any) -> None:
        """Update the latest progress; written at most once a second."""
        self._progress.update(fields)
        if self._monotonic() - self._last_write >= _PROGRESS_EVERY_S:
            self._write()

    def event(self, kind: str, payload: dict[str, Any], **progress: Any) -> None:
        """An event for the job's stream (written at once, with the latest progress)."""
        self._progress.update(progress)
        self._write({"kind": kind, "payload": payload})

    def phase(self, name: str, **details: Any) -> None:
        self.event("phase", {"phase": name, **details}, phase=name, **details)

    def should_stop(self) -> bool:
        """Whether cancellation was asked for (checked in the store at most every 0.25 s)."""
        if not self.job.tracked or self._stop_requested:
            return self._stop_requested
        now = self._monotonic()
        if now - self._last_check >= _CANCEL_CHECK_EVERY_S:
            self._last_check = now
            self._stop_requested = queries.cancel_requested(self.reader, self.job.subject_id)
        return self._stop_requested

    def stop_if_asked(self) -> None:
        """Raises:
        JobCancelled: cancellation was asked for.
        """
        if self.should_stop():
            raise JobCancelled

    # The training loops' hooks (actors.training.common.Hooks).

    def on_batch(self, epoch: int, batch: int, batches: int, step: int) -> None:
        self.progress(epoch=epoch, batch=batch, batches=batches, step=step)

    def on_epoch(self, figures: dict[str, Any]) -> None:
        self.event("epoch", figures, phase="training", **figures)

    def _write(self, event: dict[str, Any] | None = None) -> None:
        self._last_write = self._monotonic()
        if not self.job.tracked:
            log.debug("%s: %s", self.job.name, event or self._progress)
            return
        self.ops.record_job_progress(
            job_id=self.job.subject_id, progress=self._progress, event=event
        )

    def for_job(self, job: Job) -> JobReporter:
        """A reporter for work this job runs inline (a training's preprocessing)."""
        return JobReporter(
            self.settings, job, self.store, self.fan_out, self._submit, self._monotonic
        )

    def submit(self, job: Job) -> object:
        """Start another job in the background.

        Raises:
            RuntimeError: this reporter was built without a way to start jobs.
        """
        if self._submit is None:
            raise RuntimeError(f"{self.job.name} cannot start {job.name} here")
        return self._submit(job)

    # --- artifacts and the end -------------------------------------------------------------

    def write_artifact(self, relative_path: str, chunks: Iterable[bytes]) -> StoredFile:
        """A file under the artifacts folder, written whole or not at all, with its checksum."""
        return write_artifact(self.settings.artifacts_dir, relative_path, chunks)

    def log_end(self, outcome: Outcome) -> None:
        level = (
            logging.INFO if outcome.status in ("completed", "ready", "skipped") else logging.WARNING
        )
        log.log(
            level,
            "%s ended %s%s",
            self.job.name,
            outcome.status,
            f": {outcome.reason}" if outcome.reason else "",
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.conn.close()
            self._reader = None
