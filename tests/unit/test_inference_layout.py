"""How the inference pool spreads over the cores: the configured figures win, else one replica
per core (at most four) of one core's threads each, and one replica on a GPU."""

from __future__ import annotations

import pytest

from cvplatform.inference.layout import MAX_AUTO_REPLICAS, PoolLayout, pool_layout


@pytest.mark.parametrize(
    ("replicas", "threads", "cpus", "gpu", "expected"),
    [
        (None, None, 2, False, PoolLayout(replicas=2, threads=1, cores=2)),  # this machine
        (None, None, 1, False, PoolLayout(replicas=1, threads=1, cores=1)),
        (None, None, 16, False, PoolLayout(replicas=MAX_AUTO_REPLICAS, threads=4, cores=16)),
        (
            None,
            None,
            6,
            False,
            PoolLayout(replicas=4, threads=1, cores=6),
        ),  # 6 // 4: never oversubscribed
        (None, None, 16, True, PoolLayout(replicas=1, threads=16, cores=16)),
        (3, None, 16, False, PoolLayout(replicas=3, threads=5, cores=16)),
        (None, 2, 8, False, PoolLayout(replicas=4, threads=2, cores=8)),
        (
            2,
            3,
            2,
            False,
            PoolLayout(replicas=2, threads=3, cores=2),
        ),  # as configured, even if too many
        (8, None, 2, False, PoolLayout(replicas=8, threads=1, cores=2)),  # at least one thread
        (None, None, 0, False, PoolLayout(replicas=1, threads=1, cores=1)),
    ],
)
def test_the_layout(
    replicas: int | None, threads: int | None, cpus: int, gpu: bool, expected: PoolLayout
) -> None:
    assert pool_layout(replicas, threads, cpus, gpu) == expected


def test_runs_share_the_cores_only_when_split() -> None:
    assert pool_layout(None, None, 2, False).shares_cores
    assert not pool_layout(None, None, 1, False).shares_cores
    assert not pool_layout(None, None, 16, True).shares_cores
    assert not pool_layout(2, 3, 2, False).shares_cores
