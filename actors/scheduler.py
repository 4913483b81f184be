"""The GPU job scheduler: a named Ray actor that runs queued jobs, oldest first, on the GPU slots.

The queue itself is the ``jobs`` table (so it survives a restart). Each job runs as a Ray task that
takes one ``gpu_slot`` (and half a GPU where there is one); the scheduler starts no more than there
are slots, and when a job's process dies it records the job ``failed`` and starts the next.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from actors.background import SCHEDULER_NAME
from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from cvplatform.errors import CvpError
from cvplatform.jsonlog import configure_logging
from store.actor import StoreClient
from store.connections import reading

_TICK_S = 1.0
log = logging.getLogger("cvp.scheduler")


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "scheduler")
        self._settings = settings
        self._store = StoreClient()
        self._gpus = float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
        self._tracked: dict[
            str, Any
        ] = {}  # job id -> its task, or None if an earlier life started it
        self._lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None

    async def wake(self) -> dict[str, Any]:
        """Start queued jobs on free slots now (called after a submission)."""
        self._ensure_loop()
        await self._fill()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {"slots": self._settings.gpu_slots, "running": sorted(self._tracked)}

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        # A restarted scheduler adopts the jobs its earlier life started: they still hold slots.
        for job_id in self._running_in_store():
            self._tracked.setdefault(job_id, None)
        while True:
            try:
                self._forget_adopted_jobs_that_ended()
                await self._fill()
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(_TICK_S)

    def _running_in_store(self) -> list[str]:
        with reading(self._settings.db_path) as reader:
            return [
                row["id"] for row in reader.query("SELECT id FROM jobs WHERE status = 'running'")
            ]

    def _forget_adopted_jobs_that_ended(self) -> None:
        running = set(self._running_in_store())
        for job_id in [job_id for job_id, task in self._tracked.items() if task is None]:
            if job_id not in running:
                del self._tracked[job_id]

    async def _fill(self) -> None:
        async with self._lock:
            while len(self._tracked) < self._settings.gpu_slots:
                job = await self._store.call("claim_next_job")
                if job is None:
                    return
                try:
                    self._tracked[job["id"]] = self._start(job)
                except Exception as error:  # never leave a claimed job "running" with no process
                    log.exception("could not start job %s", job["id"])
                    await self._store.call(
                        "finish_job",
                        job_id=job["id"],
                        status="failed",
                        error=f"the scheduler could not start it: {error}",
                    )
                    continue
                asyncio.get_running_loop().create_task(self._watch(job))

    def _start(self, job: dict[str, Any]) -> Any:
        from actors.training_task import run_job  # torch: loaded by the job's process, not here

        # max_calls=1: a fresh process per job, so GPU memory and threads start clean.
        # num_cpus=0: its slot is its reservation (its preprocessing tasks take the CPUs).
        task = ray.remote(max_calls=1, max_retries=0, num_cpus=0)(run_job).options(
            name=f"{job['name']} [{job['id'][:8]}]",  # what the Ray dashboard shows
            resources={"gpu_slot": 1},
            num_gpus=0.5 if self._gpus else 0,
        )
        log.info("starting job %s (%s)", job["id"], job["name"])
        return task.remote(self._settings, job)

    async def _watch(self, job: dict[str, Any]) -> None:
        try:
            await self._tracked[job["id"]]
        except ray.exceptions.RayError as error:
            log.error("job %s: its process died: %s", job["id"], error)
            try:
                await self._store.call(
                    "finish_job",
                    job_id=job["id"],
                    status="failed",
                    error=f"the job's process died ({type(error).__name__}); "
                    "see the Ray worker logs",
                )
            except CvpError:
                log.exception("could not record the end of job %s", job["id"])
        finally:
            self._tracked.pop(job["id"], None)
        await self._fill()


def start_scheduler(settings: Settings) -> Any:
    actor: Any = (
        ray.remote(Scheduler)
        .options(name=SCHEDULER_NAME, namespace=RAY_NAMESPACE, max_restarts=-1, num_cpus=0)
        .remote(settings)
    )
    ray.get(actor.wake.remote())
    return actor
