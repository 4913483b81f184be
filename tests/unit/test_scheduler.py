"""The scheduler's shell with its collaborators handed in: a real store on SQLite, launches that
the test ends by hand. No Ray cluster: the decision and the bookkeeping are what is tested."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ray.exceptions

from actors.jobs.registry import Job
from actors.jobs.scheduling import Start
from actors.scheduler import Scheduler, read_queue
from store import queries
from store.connections import reading
from store.operations import AsyncStoreOperations
from tests.api_harness import InProcessStore, SteppedClock
from tests.jobs_kit import settings_in


def _enqueue(store: InProcessStore, count: int) -> list[str]:
    ids = [f"job{number}" for number in range(count)]
    for job_id in ids:
        job = {"id": job_id, "kind": "training", "name": job_id, "request": {}}
        store.run_sync("enqueue_job", job=job, max_queued=10)
    return ids


def test_jobs_start_on_free_slots_and_the_next_starts_when_one_ends(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = settings_in(tmp_path / "data", gpu_slots=2)
        store = InProcessStore(settings.db_path, SteppedClock())
        launched: dict[str, asyncio.Future[str]] = {}
        deaths: list[tuple[str, str]] = []

        def launch(job: Job, start: Start) -> Any:
            assert start.gpu_slots == 1 and start.num_gpus == 0.5
            launched[job.subject_id] = asyncio.get_running_loop().create_future()
            return launched[job.subject_id]

        def record_death(job: Job, error: BaseException) -> None:
            deaths.append((job.subject_id, type(error).__name__))
            store.run_sync("finish_job", job_id=job.subject_id, status="failed", error="died")

        scheduler = Scheduler(
            settings,
            AsyncStoreOperations(store),
            1.0,
            lambda: read_queue(settings),
            launch,
            record_death,
        )
        ids = _enqueue(store, 3)
        state = await scheduler.wake()
        assert state["running"] == ids[:2]
        assert read_queue(settings).running_ids == ids[:2]

        store.run_sync("finish_job", job_id=ids[0], status="completed")
        launched[ids[0]].set_result("completed")
        for _ in range(100):
            if ids[2] in launched:
                break
            await asyncio.sleep(0.01)
        assert sorted(scheduler.state()["running"]) == ids[1:]

        launched[ids[1]].set_exception(ray.exceptions.WorkerCrashedError())
        for _ in range(100):
            if deaths:
                break
            await asyncio.sleep(0.01)
        assert deaths == [(ids[1], "WorkerCrashedError")]
        await asyncio.sleep(0.05)
        assert scheduler.state()["running"] == [ids[2]]
        store.close()

    asyncio.run(scenario())


def test_a_job_that_cannot_be_launched_ends_failed_and_frees_its_slot(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = settings_in(tmp_path / "data", gpu_slots=1)
        store = InProcessStore(settings.db_path, SteppedClock())

        def launch(job: Job, start: Start) -> Any:
            raise RuntimeError("no such resource")

        scheduler = Scheduler(
            settings,
            AsyncStoreOperations(store),
            0.0,
            lambda: read_queue(settings),
            launch,
            lambda job, error: None,
        )
        ids = _enqueue(store, 2)
        await scheduler.wake()
        with reading(settings.db_path) as reader:
            for job_id in ids:
                job = queries.job_by_id(reader, job_id)
                assert job is not None and job.status == "failed"
                assert "could not start it: no such resource" in job.error
        assert scheduler.state()["running"] == []
        store.close()

    asyncio.run(scenario())
