"""A replica's admission bounds in plain asyncio: refused at once past the queue's bound, admitted
first come first served as workers free up, refused after the queue timeout, and the worker given
back however a request ends (an error, a cancelled waiter, even one cancelled as it was granted)."""

from __future__ import annotations

import asyncio
import time

import pytest

from cvplatform.errors import InferenceQueueFull, InferenceQueueTimeout
from cvplatform.inference.admission import Admission

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # what the Serve replica runs on


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Holder:
    """A request that holds a worker until the test lets it go."""

    def __init__(self, admission: Admission, name: str, entered: list[str]) -> None:
        self.admission = admission
        self.name = name
        self.entered = entered
        self.release = asyncio.Event()
        self.waited: float | None = None
        self.task = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        async with self.admission.worker() as waited:
            self.waited = waited
            self.entered.append(self.name)
            await self.release.wait()


async def settle() -> None:
    """Let every ready task run up to its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_request_past_the_queue_bound_is_refused_at_once() -> None:
    admission = Admission(workers=1, queue_max=1, queue_timeout_s=30)
    entered: list[str] = []
    first = Holder(admission, "first", entered)
    await settle()
    second = Holder(admission, "second", entered)
    await settle()
    assert (admission.busy, admission.waiting, entered) == (1, 1, ["first"])

    started = time.perf_counter()
    with pytest.raises(InferenceQueueFull) as refused:
        async with admission.worker():
            pytest.fail("a request past the bound reached a worker")
    assert time.perf_counter() - started < 0.5  # at once, not after the queue timeout
    assert 1 <= refused.value.retry_after_s <= 30
    assert refused.value.headers()["Retry-After"] == str(refused.value.retry_after_s)
    assert (admission.busy, admission.waiting) == (1, 1)  # the refused one left no trace

    first.release.set()
    second.release.set()
    await asyncio.gather(first.task, second.task)
    assert (admission.busy, admission.waiting) == (0, 0)


async def test_with_no_queue_a_second_request_is_refused_while_the_worker_is_busy() -> None:
    admission = Admission(workers=1, queue_max=0, queue_timeout_s=30)
    async with admission.worker():
        with pytest.raises(InferenceQueueFull):
            async with admission.worker():
                pytest.fail("no queue: nobody may wait")
    async with admission.worker() as waited:  # free again
        assert waited >= 0


async def test_every_worker_serves_before_anyone_queues() -> None:
    admission = Admission(workers=3, queue_max=0, queue_timeout_s=30)
    entered: list[str] = []
    holders = [Holder(admission, f"r{index}", entered) for index in range(3)]
    await settle()
    assert (admission.busy, admission.waiting) == (3, 0)
    assert sorted(entered) == ["r0", "r1", "r2"]
    with pytest.raises(InferenceQueueFull):
        async with admission.worker():
            pass
    for holder in holders:
        holder.release.set()
    await asyncio.gather(*(holder.task for holder in holders))
    assert admission.busy == 0


async def test_waiting_requests_are_admitted_first_come_first_served() -> None:
    admission = Admission(workers=1, queue_max=3, queue_timeout_s=30)
    entered: list[str] = []
    holders = [Holder(admission, "first", entered)]
    await settle()
    for name in ("b", "c", "d"):
        holders.append(Holder(admission, name, entered))
        await settle()
    assert (admission.busy, admission.waiting) == (1, 3)

    for index, expected in enumerate(["first", "b", "c", "d"]):
        assert entered == ["first", "b", "c", "d"][: index + 1]
        assert admission.busy == 1  # one worker: never two in at once
        assert admission.waiting == 3 - index
        assert entered[-1] == expected
        holders[index].release.set()
        await settle()
    await asyncio.gather(*(holder.task for holder in holders))
    assert (admission.busy, admission.waiting) == (0, 0)


async def test_a_request_that_waits_past_the_queue_timeout_is_refused() -> None:
    admission = Admission(workers=1, queue_max=2, queue_timeout_s=0.05)
    entered: list[str] = []
    holder = Holder(admission, "holder", entered)
    await settle()

    started = time.perf_counter()
    with pytest.raises(InferenceQueueTimeout) as refused:
        async with admission.worker():
            pytest.fail("a timed-out request reached a worker")
    waited = time.perf_counter() - started
    assert 0.045 <= waited < 1.0
    assert "0.05 s" in str(refused.value)
    assert refused.value.retry_after_s >= 1
    assert (admission.busy, admission.waiting) == (1, 0)

    holder.release.set()
    await holder.task
    async with admission.worker():  # the timed-out wait took no permit with it
        assert admission.busy == 1


async def test_the_worker_is_given_back_when_the_block_raises() -> None:
    admission = Admission(workers=1, queue_max=0, queue_timeout_s=30)
    with pytest.raises(ZeroDivisionError):
        async with admission.worker():
            assert admission.busy == 1
            _ = 1 / 0
    assert (admission.busy, admission.waiting) == (0, 0)
    async with admission.worker():
        assert admission.busy == 1


async def test_a_request_cancelled_while_it_holds_a_worker_gives_it_back() -> None:
    admission = Admission(workers=1, queue_max=0, queue_timeout_s=30)
    holder = Holder(admission, "holder", [])
    await settle()
    assert admission.busy == 1
    holder.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder.task
    assert (admission.busy, admission.waiting) == (0, 0)
    async with admission.worker():
        pass


async def assert_exactly_one_free_worker(admission: Admission) -> None:
    """Admission(workers=1, queue_max=0): one request gets in, a second at the same time not."""
    async with admission.worker():
        with pytest.raises(InferenceQueueFull):
            async with admission.worker():
                pass
    assert (admission.busy, admission.waiting) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_queue_and_leaks_no_permit() -> None:
    admission = Admission(workers=1, queue_max=1, queue_timeout_s=30)
    entered: list[str] = []
    holder = Holder(admission, "holder", entered)
    await settle()
    waiter = Holder(admission, "waiter", entered)
    await settle()
    assert admission.waiting == 1

    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    assert (admission.busy, admission.waiting) == (1, 0)
    holder.release.set()
    await holder.task
    assert entered == ["holder"]
    # A smaller queue bound would show a leaked permit as a second request let in.
    admission.queue_max = 0
    await assert_exactly_one_free_worker(admission)


async def cancelled_as_granted(admission: Admission, entered: list[str]) -> Holder:
    """A waiter cancelled in the same loop step as the worker is handed to it, before it runs."""
    async with admission.worker():
        waiter = Holder(admission, "waiter", entered)
        await settle()
        assert admission.waiting == 1
    waiter.task.cancel()  # the worker was handed to the waiter as the block above ended
    waiter.release.set()  # should it get in after all, it does not stay in
    return waiter


async def test_a_waiter_cancelled_just_as_the_worker_is_granted_leaks_no_permit() -> None:
    admission = Admission(workers=1, queue_max=1, queue_timeout_s=30)
    waiter = await cancelled_as_granted(admission, [])
    await asyncio.gather(waiter.task, return_exceptions=True)
    assert (admission.busy, admission.waiting) == (0, 0)
    admission.queue_max = 0
    await assert_exactly_one_free_worker(admission)


async def test_a_waiter_cancelled_just_as_the_worker_is_granted_never_enters() -> None:
    admission = Admission(workers=1, queue_max=1, queue_timeout_s=30)
    entered: list[str] = []
    waiter = await cancelled_as_granted(admission, entered)
    outcome = await asyncio.gather(waiter.task, return_exceptions=True)
    assert entered == []  # a request whose client is gone must not reach a model
    assert isinstance(outcome[0], asyncio.CancelledError)


async def test_the_wait_for_a_worker_is_measured_on_the_injected_clock() -> None:
    clock = FakeClock(100.0)
    admission = Admission(workers=1, queue_max=1, queue_timeout_s=30, clock=clock)
    entered: list[str] = []
    holder = Holder(admission, "holder", entered)
    await settle()
    assert holder.waited == 0.0  # a free worker: no wait

    waiter = Holder(admission, "waiter", entered)
    await settle()
    clock.now = 103.5
    holder.release.set()
    await settle()
    assert entered == ["holder", "waiter"]
    assert waiter.waited == pytest.approx(3.5)
    clock.now = 200.0  # later readings do not change what was yielded
    waiter.release.set()
    await asyncio.gather(holder.task, waiter.task)
    assert waiter.waited == pytest.approx(3.5)


@pytest.mark.parametrize(
    ("workers", "queue_max", "queue_timeout_s"),
    [(0, 4, 1.0), (-1, 4, 1.0), (1, -1, 1.0), (1, 4, 0.0), (1, 4, -0.5)],
)
def test_the_bounds_are_checked_when_made(
    workers: int, queue_max: int, queue_timeout_s: float
) -> None:
    with pytest.raises(ValueError, match="workers"):
        Admission(workers, queue_max, queue_timeout_s)


def test_the_smallest_bounds_are_accepted() -> None:
    admission = Admission(workers=1, queue_max=0, queue_timeout_s=0.001)
    assert (admission.workers, admission.queue_max) == (1, 0)
    assert (admission.busy, admission.waiting) == (0, 0)
