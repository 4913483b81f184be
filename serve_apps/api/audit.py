"""The API process's audit trail: rows recorded per request, written in batches, purged daily.

The guard calls :meth:`AuditTrail.record` before a response is sent: the row goes to the spool
file and the in-memory buffer, no store call. A task started with the app
(:meth:`AuditTrail.running`) writes the buffer every ``flush_interval_s``, or sooner when
``batch_rows`` rows wait, as one ``append_audit_batch`` per batch, then drops the written rows
from the spool. A write that fails raises an alert and is retried from the buffer and spool; the
rows a dead process left in the spool are read back when the next one builds its trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from cvplatform.clock import Clock
from cvplatform.config import Settings
from serve_apps.api.audit_rows import AuditBuffer, AuditRow
from serve_apps.api.audit_spool import AuditSpool
from serve_apps.api.audit_upkeep import AuditAlert, FailureStreak, PurgeSchedule
from store.operations import AsyncStoreOperations

log = logging.getLogger("cvp.api")

SPOOL_NAME = "audit-spool.jsonl"
FLUSH_INTERVAL_S = 0.5
BATCH_ROWS = 100
PURGE_CHUNK_ROWS = 10_000
# A failing audit write is a warning at once, critical when it has lasted this long.
CRITICAL_AFTER = timedelta(minutes=1)


class AuditTrail:
    """Records audit rows at once and writes them to the store in batches.

    Args:
        ops: the store's operations.
        spool_path: the spool file; rows found there are taken up at once.
        clock: stamps the purge schedule and the failure streak.
        retention: rows older than this are purged, once per ``purge_interval``.
        call_timeout_s: how long one store call may take before it counts as failed.
    """

    def __init__(
        self,
        ops: AsyncStoreOperations,
        spool_path: Path,
        clock: Clock,
        retention: timedelta,
        purge_interval: timedelta,
        call_timeout_s: float = 30.0,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self._ops = ops
        self._clock = clock
        self._call_timeout_s = call_timeout_s
        self._flush_interval_s = flush_interval_s
        self._batch_rows = batch_rows
        self._buffer = AuditBuffer()
        self._spool = AuditSpool(spool_path)
        self._purges = PurgeSchedule(retention, purge_interval)
        self._failures = FailureStreak(CRITICAL_AFTER)
        self._writing = asyncio.Lock()
        self._batch_ready = asyncio.Event()
        # The loop the background writer runs on: one writer per trail, however many lifespans
        # an app goes through at once (a test client and a fuzzer each run one, on their loops).
        self._writer_loop: asyncio.AbstractEventLoop | None = None
        for row in self._spool.load():  # what a previous process recorded and did not write
            self._buffer.add(row)

    @classmethod
    def from_settings(
        cls, settings: Settings, ops: AsyncStoreOperations, clock: Clock
    ) -> AuditTrail:
        return cls(
            ops,
            settings.data_dir / SPOOL_NAME,
            clock,
            retention=timedelta(days=settings.audit_retention_days),
            purge_interval=timedelta(seconds=settings.audit_purge_interval_s),
            call_timeout_s=settings.store_call_timeout_s,
        )

    @property
    def waiting(self) -> int:
        """Rows recorded and not yet written."""
        return len(self._buffer)

    def record(self, row: AuditRow) -> None:
        """Keep ``row`` until its batch is written: in the spool file, then in memory."""
        try:
            self._spool.append(row)
        except OSError as error:  # a full disk: the row is still written from memory
            log.error("audit spool write failed: %s", error, extra={"action": row.action})
        self._buffer.add(row)
        if len(self._buffer) >= self._batch_rows and self._on_writer_loop():
            self._batch_ready.set()  # otherwise the writer's next tick takes them

    def _on_writer_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._writer_loop
        except RuntimeError:
            return False

    async def flush(self) -> bool:
        """Write every waiting row, a batch per store call; returns whether all were written.

        A batch the store refuses stays waiting (and in the spool) and raises an alert; nothing
        here raises.
        """
        async with self._writing:
            if await self._write_batches():
                self._drop_written_from_spool()
            return not self._buffer

    def _drop_written_from_spool(self) -> None:
        try:
            self._spool.rewrite(self._buffer.rows())
        except OSError as error:  # the written rows stay in the spool: written again on replay
            log.error("audit spool rewrite failed: %s", error)

    async def _write_batches(self) -> int:
        written = 0
        while self._buffer:
            batch = self._buffer.take(self._batch_rows)
            try:
                await asyncio.wait_for(
                    self._ops.append_audit_batch(rows=[row.as_dict() for row in batch]),
                    self._call_timeout_s,
                )
            except Exception as error:
                self._buffer.put_back(batch)
                await self._report_failure(error)
                break
            written += len(batch)
            started = self._failures.succeeded()
            if started is not None:
                log.warning("audit writes work again (failing since %s)", started.isoformat())
        return written

    async def _report_failure(self, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        log.error("audit write failed: %s", reason, extra={"rows_waiting": self.waiting})
        alert = self._failures.failed(self._clock(), self.waiting, reason)
        if alert is not None:
            await self._raise(alert)

    async def _raise(self, alert: AuditAlert) -> None:
        try:
            await asyncio.wait_for(
                self._ops.raise_alert(alert.kind, alert.severity, alert.message, alert.details),
                self._call_timeout_s,
            )
        except Exception as error:  # the store refuses the alert too: try again next failure
            log.error("audit alert not written: %s", error, extra={"alert": alert.message})
            return
        self._failures.alert_written(alert)

    async def purge_if_due(self) -> int | None:
        """Delete the rows past the retention if a purge is due; returns how many (None: not due).

        A failed purge is logged and tried again at the next call.
        """
        now = self._clock()
        cutoff = self._purges.cutoff_if_due(now)
        if cutoff is None:
            return None
        purged = 0
        try:
            while True:
                deleted = await asyncio.wait_for(
                    self._ops.purge_audit(before=cutoff, limit=PURGE_CHUNK_ROWS),
                    self._call_timeout_s,
                )
                purged += deleted
                if deleted < PURGE_CHUNK_ROWS:
                    break
        except Exception as error:
            log.error("audit purge failed: %s", error, extra={"purged": purged})
            return purged
        self._purges.ran(now)
        log.info("audit log purged", extra={"purged": purged, "before": cutoff})
        return purged

    async def _write_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_ready.wait(), self._flush_interval_s)
            self._batch_ready.clear()
            try:
                await self.flush()
                await self.purge_if_due()
            except Exception:  # nothing above should raise; if it does, the writer goes on
                log.exception("audit upkeep failed")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Write batches in the background while the block runs (the app's lifespan); at its end,
        write what the last requests recorded."""
        if self._writer_loop is not None:  # a second lifespan at once: the first one writes
            yield
            return
        self._writer_loop = asyncio.get_running_loop()
        self._batch_ready = asyncio.Event()
        writer = asyncio.create_task(self._write_forever(), name="audit-writer")
        try:
            yield
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._writer_loop = None
            await self.flush()
            self._spool.close()
