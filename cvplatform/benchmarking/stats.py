"""Latency statistics of a measured window, with bootstrap confidence intervals.

Percentiles use numpy's ``method="linear"`` (Hyndman & Fan type 7, numpy's default): for ``n``
sorted samples the p-th percentile lies at position ``(n - 1) * p / 100``, interpolated linearly
between its two neighbours. The standard deviation is the sample one (``ddof=1``; 0.0 for a single
sample). Throughput is ``batch_size * 1000 / mean_ms`` samples per second.

The 95% intervals for p95, p99 and throughput are percentile-bootstrap intervals: ``resamples``
resamples of the window drawn with replacement from ``np.random.default_rng(seed)``, the statistic
computed on each, and the interval the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
those. The same samples and seed give the same intervals, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

PERCENTILE_METHOD: Final = "linear"  # numpy's default, Hyndman & Fan type 7; documented for users


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class LatencyStats:
    samples: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    throughput_fps: float
    p95_ci: Interval
    p99_ci: Interval
    throughput_ci: Interval

    def metrics(self) -> dict[str, float]:
        """The latency and throughput metrics by their stored names."""
        return {
            "latency_mean_ms": self.mean_ms,
            "latency_p50_ms": self.p50_ms,
            "latency_p95_ms": self.p95_ms,
            "latency_p99_ms": self.p99_ms,
            "latency_min_ms": self.min_ms,
            "latency_max_ms": self.max_ms,
            "latency_std_ms": self.std_ms,
            "throughput_fps": self.throughput_fps,
        }

    def intervals(self) -> dict[str, Interval]:
        """The confidence intervals by the name of the metric each one brackets."""
        return {
            "latency_p95_ms": self.p95_ci,
            "latency_p99_ms": self.p99_ci,
            "throughput_fps": self.throughput_ci,
        }


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q, method=PERCENTILE_METHOD))


def _interval(estimates: np.ndarray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail], method=PERCENTILE_METHOD)
    return Interval(float(low), float(high))


def _check(samples: np.ndarray, batch_size: int, resamples: int, level: float) -> None:
    if samples.size == 0:
        raise ValueError("no samples: nothing was measured")
    if not np.all(np.isfinite(samples)) or np.any(samples <= 0):
        raise ValueError("every latency sample must be a finite number of milliseconds above 0")
    if batch_size < 1:
        raise ValueError(f"the batch size must be 1 or more, not {batch_size}")
    if resamples < 1:
        raise ValueError(f"resamples must be 1 or more, not {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"the confidence level must lie between 0 and 1, not {level}")


def summarize(
    samples_ms: Sequence[float],
    batch_size: int,
    seed: int,
    resamples: int = 1000,
    level: float = 0.95,
) -> LatencyStats:
    """The statistics of one measured window.

    Args:
        samples_ms: one latency per measured run, in milliseconds.
        batch_size: samples per run, for the throughput.
        seed: seeds the bootstrap; the same seed gives the same intervals.
        resamples: bootstrap resamples.
        level: the intervals' confidence level.

    Raises:
        ValueError: no samples, a sample that is not a positive finite number, a batch size or
            resample count below 1, or a level outside (0, 1).
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    _check(values, batch_size, resamples, level)
    mean_ms = float(values.mean())
    # One draw of resamples x n indices: vectorised, and the order of draws fixed by the seed.
    rng = np.random.default_rng(seed)
    resampled = values[rng.integers(0, values.size, size=(resamples, values.size))]
    boot_p95, boot_p99 = np.percentile(resampled, [95.0, 99.0], axis=1, method=PERCENTILE_METHOD)
    boot_throughput = batch_size * 1000.0 / resampled.mean(axis=1)
    return LatencyStats(
        samples=int(values.size),
        mean_ms=mean_ms,
        p50_ms=_percentile(values, 50.0),
        p95_ms=_percentile(values, 95.0),
        p99_ms=_percentile(values, 99.0),
        min_ms=float(values.min()),
        max_ms=float(values.max()),
        std_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        throughput_fps=batch_size * 1000.0 / mean_ms,
        p95_ci=_interval(boot_p95, level),
        p99_ci=_interval(boot_p99, level),
        throughput_ci=_interval(boot_throughput, level),
    )
