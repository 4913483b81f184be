"""Which queued jobs start now, and with what: the scheduler's decision as a pure function.

Every job that runs on the GPU slots holds one slot per process it runs (a training holds one; a
GA search's driver holds none while each of its trials holds one); a job that needs no slot
starts at once. The queue is first in, first out for the jobs that compete for slots: a job
never overtakes an older one that waits for a slot, but work that needs none never waits behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    gpu_slots: int  # slots its first process needs: 1, or 0 for a driver that only waits


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    gpu_slots: int  # slots its processes hold now


@dataclass(frozen=True)
class Start:
    """Start this job now, holding ``gpu_slots`` and that share of the GPUs."""

    job_id: str
    gpu_slots: int
    num_gpus: float


def gpu_share_per_slot(slots: int, gpus: float) -> float:
    """The fraction of GPUs one slot gets: two slots on one GPU get half of it each; on a
    machine without a GPU, none (the job runs on the CPU and says so)."""
    if gpus <= 0 or slots <= 0:
        return 0.0
    return min(1.0, gpus / slots)


def free_slots(running: Sequence[RunningJob], slots: int) -> int:
    return max(0, slots - sum(job.gpu_slots for job in running))


def next_starts(
    queued: Sequence[QueuedJob], running: Sequence[RunningJob], slots: int, gpus: float
) -> list[Start]:
    """The jobs to start now, oldest first.

    Args:
        queued: the waiting jobs, oldest first.
        running: the jobs running now, with the slots each holds.
        slots: the node's GPU slots (``CVP_GPU_SLOTS``).
        gpus: the node's GPUs (0 without one).
    """
    available = free_slots(running, slots)
    share = gpu_share_per_slot(slots, gpus)
    starts = []
    waiting_for_a_slot = False
    for job in queued:
        if job.gpu_slots == 0:
            starts.append(Start(job.job_id, 0, 0.0))
        elif not waiting_for_a_slot and job.gpu_slots <= available:
            available -= job.gpu_slots
            starts.append(Start(job.job_id, job.gpu_slots, share * job.gpu_slots))
        else:
            waiting_for_a_slot = True  # FIFO: younger slot jobs wait behind this one
    return starts
