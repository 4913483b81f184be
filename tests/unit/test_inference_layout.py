"""How the inference pool spreads over the cores: the configured figures win, else one replica
per core (at most four) of one core's threads each, and one replica on a GPU."""

from __future__ import annotations

import pytest

from cvplatform.inference.layout import MAX_AUTO_REPLICAS, PoolLayout, pool_layout


@pytest.mark.parametrize(
    ("replicas", "threads", "cpus", "gpu", "expected"),
    [
        (None, None, 2, False, PoolLayout(replicas=2, threads=1)),  # this machine
        (None, None, 1, False, PoolLayout(replicas=1, threads=1)),
        (None, None, 16, False, PoolLayout(replicas=MAX_AUTO_REPLICAS, threads=4)),
        (None, None, 6, False, PoolLayout(replicas=4, threads=1)),  # 6 // 4: never oversubscribed
        (None, None, 16, True, PoolLayout(replicas=1, threads=16)),
        (3, None, 16, False, PoolLayout(replicas=3, threads=5)),
        (None, 2, 8, False, PoolLayout(replicas=4, threads=2)),
        (2, 3, 2, False, PoolLayout(replicas=2, threads=3)),  # as configured, even if too many
        (8, None, 2, False, PoolLayout(replicas=8, threads=1)),  # at least one thread
        (None, None, 0, False, PoolLayout(replicas=1, threads=1)),
    ],
)
def test_the_layout(
    replicas: int | None, threads: int | None, cpus: int, gpu: bool, expected: PoolLayout
) -> None:
    assert pool_layout(replicas, threads, cpus, gpu) == expected
