"""How the inference pool spreads over the machine: how many replicas, and how many threads each
of their model runs uses.

On CPUs the cores are split among replicas, not shared. Measured with ``bench/load.py``
(EfficientNet-B0, 100 users, this 2-core machine, each row with its own run's raw ONNX Runtime
figure): one replica whose runs use both cores answered 34.8 requests/s (raw 73.4 samples/s);
two replicas of one thread each, 58.6 (raw 74.4); two replicas of two threads each, 29.2 (raw
96.8). A run whose threads meet at every operator stalls whenever the replica's other work
(decoding, HTTP) takes one of its cores, and two such runs at once oversubscribe them; one-thread
runs side by side do neither.

With a GPU the runs are on the GPU: one replica, as each replica would hold its own copy of
every model in GPU memory (not measured here: no GPU on this machine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Each replica holds its own copy of every model it serves: more replicas, more memory.
MAX_AUTO_REPLICAS = 4


@dataclass(frozen=True)
class PoolLayout:
    replicas: int
    threads: int  # ONNX Runtime's intra-op threads for each model run
    cores: int  # the machine's, for a run that has a replica to itself

    @property
    def shares_cores(self) -> bool:
        """Whether a run has fewer threads than the machine has cores."""
        return self.threads < self.cores


def available_cpus() -> int:
    """The cores this process may run on (a container's or taskset's limit included)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pool_layout(
    replicas: int | None, threads: int | None, cpus: int, gpu_available: bool
) -> PoolLayout:
    """The pool's replicas and threads per run: what is configured, else the defaults above.

    Args:
        replicas: ``CVP_INFERENCE_REPLICAS``; unset: one per core (at most ``MAX_AUTO_REPLICAS``),
            or one with a GPU.
        threads: ``CVP_INFERENCE_THREADS``; unset: the cores divided among the replicas (at
            least one).
        cpus: the cores available.
        gpu_available: whether the models run on a GPU.
    """
    cores = max(1, cpus)
    chosen = replicas or (1 if gpu_available else min(cores, MAX_AUTO_REPLICAS))
    return PoolLayout(replicas=chosen, threads=threads or max(1, cores // chosen), cores=cores)
