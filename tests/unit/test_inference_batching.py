"""Dynamic batching for one model: a lone request runs at once; requests that arrive while the
model runs go together in its next run, up to the bound; a run's failure is each of its
requests'; a request given up while it waits is left out. A stand-in run function records the
batches it is given (the thing under test is the queueing, not an engine)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from cvplatform.inference.batching import MicroBatcher

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingRun:
    """Answers each request's tensor times ten; holds each run until released (if gated)."""

    def __init__(self, gated: bool = False) -> None:
        self.batches: list[list[float]] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.fail_with: Exception | None = None

    async def __call__(self, tensors: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        self.batches.append([float(tensor[0]) for tensor in tensors])
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [[tensor * 10] for tensor in tensors]


def one(value: float) -> np.ndarray:
    return np.array([value], np.float32)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_request_runs_at_once_and_alone() -> None:
    run = RecordingRun()
    outputs, shared = await MicroBatcher(run, max_requests=8).submit(one(1))
    assert (float(outputs[0][0]), shared, run.batches) == (10.0, 1, [[1.0]])


async def test_requests_that_arrive_during_a_run_go_together_in_the_next() -> None:
    run = RecordingRun(gated=True)
    batcher = MicroBatcher(run, max_requests=8)
    first = asyncio.create_task(batcher.submit(one(1)))
    await settle()
    later = [asyncio.create_task(batcher.submit(one(value))) for value in (2, 3, 4)]
    await settle()
    assert batcher.waiting == 3
    run.gate.set()
    answers = await asyncio.gather(first, *later)
    assert run.batches == [[1.0], [2.0, 3.0, 4.0]]
    assert [shared for _, shared in answers] == [1, 3, 3, 3]
    assert [float(outputs[0][0]) for outputs, _ in answers] == [10.0, 20.0, 30.0, 40.0]


async def test_a_run_takes_at_most_max_requests() -> None:
    run = RecordingRun(gated=True)
    batcher = MicroBatcher(run, max_requests=2)
    tasks = [asyncio.create_task(batcher.submit(one(value))) for value in range(5)]
    await settle()
    run.gate.set()
    await asyncio.gather(*tasks)
    assert [len(batch) for batch in run.batches] == [2, 2, 1]
    assert sorted(value for batch in run.batches for value in batch) == [0, 1, 2, 3, 4]


async def test_a_failed_run_fails_each_of_its_requests_and_the_next_run_goes_on() -> None:
    run = RecordingRun(gated=True)
    batcher = MicroBatcher(run, max_requests=8)
    run.fail_with = RuntimeError("the engine broke")
    doomed = [asyncio.create_task(batcher.submit(one(value))) for value in (1, 2)]
    await settle()
    run.gate.set()
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    run.fail_with = None
    outputs, _ = await batcher.submit(one(5))
    assert float(outputs[0][0]) == 50.0


async def test_a_request_given_up_while_waiting_is_left_out() -> None:
    run = RecordingRun(gated=True)
    batcher = MicroBatcher(run, max_requests=8)
    first = asyncio.create_task(batcher.submit(one(1)))
    await settle()
    given_up = asyncio.create_task(batcher.submit(one(2)))
    kept = asyncio.create_task(batcher.submit(one(3)))
    await settle()
    given_up.cancel()
    await settle()
    run.gate.set()
    await asyncio.gather(first, kept)
    assert run.batches == [[1.0], [3.0]]


async def test_an_idle_model_waits_for_company_when_asked_to() -> None:
    run = RecordingRun()
    batcher = MicroBatcher(run, max_requests=8, wait_s=0.05)
    answers = await asyncio.gather(*(batcher.submit(one(value)) for value in (1, 2, 3)))
    assert run.batches == [[1.0, 2.0, 3.0]]
    assert {shared for _, shared in answers} == {3}


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        MicroBatcher(RecordingRun(), max_requests=0)
