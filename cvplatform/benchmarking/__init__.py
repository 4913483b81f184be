"""Pure measurement math for benchmarks: the numbers a benchmark reports, computed without Ray.

``inputs`` makes the seeded input batches, ``measure`` times runs with an injected clock (the cold
run kept apart from warmup and the measured window), ``stats`` turns the measured window into
latency percentiles, throughput and bootstrap confidence intervals, and ``resources`` samples CPU,
host memory and (through NVML) the GPU while the window runs and describes the machine. Selection
and constraints live beside them. Nothing in this package imports ``ray``: the benchmark job in
``actors/benchmarks/`` calls it and stores what it returns.
"""
