"""The password check queue: a few checks at once, suspects served after everyone else."""

from __future__ import annotations

import asyncio

import pytest

from serve_apps.auth.check_queue import PasswordCheckQueue


async def _settle() -> None:
    for _ in range(5):  # let every ready task run up to its next wait
        await asyncio.sleep(0)


async def _served_order(arrivals: list[tuple[str, bool]], slots: int) -> list[str]:
    """Who got a slot in which order, while one check holds each slot until all have arrived."""
    queue = PasswordCheckQueue(slots)
    served: list[str] = []
    release = asyncio.Event()

    async def check(name: str, suspect: bool) -> None:
        async with queue.slot(suspect):
            served.append(name)
            await release.wait()

    first = [asyncio.create_task(check(f"early-{n}", False)) for n in range(slots)]
    await _settle()
    later = []
    for name, suspect in arrivals:
        later.append(asyncio.create_task(check(name, suspect)))
        await _settle()
    assert queue.waiting == (
        sum(not suspect for _, suspect in arrivals),
        sum(suspect for _, suspect in arrivals),
    )
    release.set()
    await asyncio.gather(*first, *later)
    return served[slots:]


def test_suspects_wait_until_nobody_else_does() -> None:
    arrivals = [("flood-1", True), ("alice", False), ("flood-2", True), ("bob", False)]
    assert asyncio.run(_served_order(arrivals, slots=1)) == ["alice", "bob", "flood-1", "flood-2"]


def test_with_nobody_else_waiting_a_suspect_gets_a_free_slot_at_once() -> None:
    async def scenario() -> tuple[int, int]:
        queue = PasswordCheckQueue(2)
        async with queue.slot(suspect=True), queue.slot(suspect=True):
            return queue.waiting

    assert asyncio.run(scenario()) == (0, 0)


def test_no_more_than_slots_checks_run_at_once() -> None:
    async def scenario() -> int:
        queue = PasswordCheckQueue(2)
        running, most = 0, 0

        async def check() -> None:
            nonlocal running, most
            async with queue.slot(suspect=False):
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.001)
                running -= 1

        await asyncio.gather(*(check() for _ in range(20)))
        return most

    assert asyncio.run(scenario()) == 2


def test_a_request_that_goes_away_while_waiting_gives_up_its_place() -> None:
    async def scenario() -> list[str]:
        queue = PasswordCheckQueue(1)
        served: list[str] = []
        release = asyncio.Event()

        async def check(name: str) -> None:
            async with queue.slot(suspect=False):
                served.append(name)
                await release.wait()

        holder = asyncio.create_task(check("holder"))
        await _settle()
        gone = asyncio.create_task(check("gone"))
        stays = asyncio.create_task(check("stays"))
        await _settle()
        gone.cancel()
        await _settle()
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, stays), timeout=5)  # not a hang
        with pytest.raises(asyncio.CancelledError):
            await gone
        return served

    assert asyncio.run(scenario()) == ["holder", "stays"]


def test_a_slot_granted_to_a_request_that_just_went_away_is_passed_on() -> None:
    async def scenario() -> list[str]:
        queue = PasswordCheckQueue(1)
        served: list[str] = []
        hold = asyncio.Event()

        async def check(name: str) -> None:
            async with queue.slot(suspect=False):
                served.append(name)

        async def holder() -> None:
            async with queue.slot(suspect=False):
                await hold.wait()
            # In the same step as the release that granted "gone" its slot: before it could run.
            gone.cancel()

        holding = asyncio.create_task(holder())
        await _settle()
        gone = asyncio.create_task(check("gone"))
        last = asyncio.create_task(check("last"))
        await _settle()
        hold.set()
        await asyncio.wait_for(asyncio.gather(holding, last), timeout=5)  # not a hang
        with pytest.raises(asyncio.CancelledError):
            await gone
        return served

    assert asyncio.run(scenario()) == ["last"]
