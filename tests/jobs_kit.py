"""Running jobs of the kernel in the test's own process: a synchronous store over a real
``StoreWriter``, and a reporter with an in-process fan-out (no Ray)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from actors.jobs.registry import Job
from actors.jobs.reporter import InProcess, JobReporter
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput
from store.writer import StoreWriter, sqlite_errors_translated


class WriterStore:
    """The store actor's synchronous contract (``call_sync``) over a writer in this process."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.calls: Counter[str] = Counter()

    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any:
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        self.calls[operation] += 1
        with sqlite_errors_translated():
            return getattr(self.writer, operation)(**kwargs)


class Submitted(list[Job]):
    """Jobs a job started: recorded for the test, which may run them itself."""

    def __call__(self, job: Job) -> object:
        self.append(job)
        return None


def settings_in(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(**{"data_dir": data_dir, "presets": "", "samples": "", **overrides})


def reporter_for(
    settings: Settings, job: Job, store: WriterStore, submitted: Submitted | None = None
) -> JobReporter:
    return JobReporter(settings, job, store, fan_out=InProcess(), submit=submitted)
