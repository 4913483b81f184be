"""Running background work so that its record always reaches a final status: if the process
doing it dies (a native crash, the OOM killer), the supervisor records that instead."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ray

log = logging.getLogger("cvp.background")


def run_watched(
    work: Callable[..., str],
    args: tuple[Any, ...],
    name: str,
    on_death: Callable[[str], None],
    **options: Any,
) -> str:
    """Run ``work(*args)`` as a Ray task and wait; if its process dies, call ``on_death`` with a
    reason and return ``"failed"``."""
    task = ray.remote(max_retries=0, **options)(work)
    try:
        status: str = ray.get(task.options(name=name).remote(*args))
    except ray.exceptions.RayError as error:
        log.error("%s: its process died: %s", name, error)
        on_death(f"the process running it died ({type(error).__name__}); see the Ray worker logs")
        return "failed"
    return status


def submit_supervised(supervisor: Callable[..., str], args: tuple[Any, ...], name: str) -> Any:
    """Start ``supervisor`` as a task that reserves no CPU (it only waits); returns at once."""
    task = ray.remote(num_cpus=0, max_retries=0)(supervisor)
    return task.options(name=name).remote(*args)
