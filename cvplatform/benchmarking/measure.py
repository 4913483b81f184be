"""Timing runs: one cold run, then warmup, then the measured window, each timed on its own.

The clock is passed in (seconds, like ``time.perf_counter``) so tests can hand a fake one; the
first run is kept apart because it pays for lazy allocation and kernel selection that the steady
state does not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    cold_ms: float  # the very first run, kept apart from the steady state; nan if never run
    warmup_ms: tuple[float, ...]
    samples_ms: tuple[float, ...]  # the measured window, one per run, in order
    stopped: bool  # should_stop() said stop before the end


def _never_stop() -> bool:
    return False


def _timed_ms(run: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    run()
    return (clock() - start) * 1000.0


def time_runs(
    run: Callable[[], object],
    warmup: int,
    iterations: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: Callable[[], bool] = _never_stop,
    on_progress: Callable[[int, int], None] | None = None,
    window: AbstractContextManager[object] | None = None,
) -> Timings:
    """Time one cold run, ``warmup`` runs and ``iterations`` measured runs of ``run``.

    ``should_stop`` is asked before every run (cold and warmup included); when it says stop, what
    was measured so far comes back with ``stopped=True``. Only the time inside ``run`` counts: the
    callbacks run outside the timed span.

    Args:
        run: one inference; its result is ignored.
        warmup: runs after the cold one that are timed but not part of the window (0 or more).
        iterations: measured runs (1 or more).
        clock: seconds from an arbitrary origin, monotonic.
        should_stop: True to stop before the next run (cancellation).
        on_progress: called with ``(done, iterations)`` after every measured run; the caller
            rate-limits what it writes.
        window: entered just before the first measured run and left after the last (a resource
            sampler: what it records covers the measured window, not the cold run or warmup).

    Returns:
        The timings in milliseconds; ``cold_ms`` is nan when stopped before the cold run.

    Raises:
        ValueError: negative warmup or fewer than one iteration.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, not {warmup}")
    if iterations < 1:
        raise ValueError(f"iterations must be 1 or more, not {iterations}")
    if should_stop():
        return Timings(math.nan, (), (), stopped=True)
    cold_ms = _timed_ms(run, clock)
    warmup_ms: list[float] = []
    for _ in range(warmup):
        if should_stop():
            return Timings(cold_ms, tuple(warmup_ms), (), stopped=True)
        warmup_ms.append(_timed_ms(run, clock))
    samples_ms: list[float] = []
    with window or nullcontext():
        for _ in range(iterations):
            if should_stop():
                return Timings(cold_ms, tuple(warmup_ms), tuple(samples_ms), stopped=True)
            samples_ms.append(_timed_ms(run, clock))
            if on_progress is not None:
                on_progress(len(samples_ms), iterations)
    return Timings(cold_ms, tuple(warmup_ms), tuple(samples_ms), stopped=False)
