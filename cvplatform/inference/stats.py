"""What the inference pool counts: requests, images, errors by code and latency histograms, for the
pool and per model, as JSON-ready snapshots that add up across replicas.

A histogram is fixed buckets, not samples, so that a replica's memory stays bounded however long it
runs and snapshots of several replicas merge by adding counts. Bucket ``i`` counts the values ``v``
with ``bounds[i - 1] < v <= bounds[i]`` (Prometheus' ``le``: a value equal to a bound goes in that
bound's bucket); the last bucket counts the values above the highest bound (``+Inf``). Counts are
per bucket, not cumulative as in Prometheus' exposition, so that merging is plain addition.

Quantiles follow Prometheus' ``histogram_quantile``: linear interpolation inside the bucket the
rank falls in, the first bucket starting at 0, and the highest finite bound when the rank falls in
the ``+Inf`` bucket. They are estimates, as precise as the buckets.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any, Final

LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000
)  # fmt: skip
LATENCY_KINDS = ("queue_wait", "inference", "total")
QUANTILES: Final = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def histogram_quantile(
    buckets_ms: Sequence[float], counts: Sequence[int], q: float
) -> float | None:
    """The ``q``-quantile of a histogram, by Prometheus' ``histogram_quantile`` rule.

    Args:
        buckets_ms: the finite upper bounds, ascending.
        counts: the count of each bucket (not cumulative), one more than the bounds: the last is
            the ``+Inf`` bucket.
        q: the quantile, from 0 to 1.

    Returns:
        The estimate; None when the histogram is empty.

    Raises:
        ValueError: ``q`` outside [0, 1], or counts that do not match the bounds.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile lies between 0 and 1, not {q}")
    if len(counts) != len(buckets_ms) + 1:
        raise ValueError(f"{len(buckets_ms)} bounds need {len(buckets_ms) + 1} counts")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0  # the observations in the buckets before the one looked at
    for index, bound in enumerate(buckets_ms):
        in_bucket = counts[index]
        # `in_bucket > 0`: for q = 0 Prometheus divides 0 by an empty bucket's 0 (NaN); the first
        # non-empty bucket's lower edge is the answer that means something.
        if below + in_bucket >= rank and in_bucket > 0:
            start = buckets_ms[index - 1] if index > 0 else 0.0
            return float(start + (bound - start) * ((rank - below) / in_bucket))
        below += in_bucket
    return float(buckets_ms[-1])


class _Histogram:
    __slots__ = ("counts", "sum_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.sum_ms = 0.0

    def observe(self, value_ms: float) -> None:
        # bisect_left: the first bound >= the value, so a value equal to a bound is in its bucket.
        self.counts[bisect_left(LATENCY_BUCKETS_MS, value_ms)] += 1
        self.sum_ms += value_ms

    def add(self, histogram: Mapping[str, Any], kind: str) -> None:
        """Add a snapshot's histogram (its ``count`` and quantiles are recomputed, not read)."""
        if [float(bound) for bound in histogram["buckets_ms"]] != list(LATENCY_BUCKETS_MS):
            raise ValueError(f"the {kind} histogram has other buckets than LATENCY_BUCKETS_MS")
        counts = histogram["counts"]
        if not isinstance(counts, list) or len(counts) != len(self.counts):
            raise ValueError(f"the {kind} histogram needs {len(self.counts)} counts")
        sum_ms = histogram["sum_ms"]
        if isinstance(sum_ms, bool) or not isinstance(sum_ms, int | float):
            raise ValueError(f"the {kind} histogram's sum_ms must be a number, not {sum_ms!r}")
        for index, count in enumerate(counts):
            self.counts[index] += _count(count, f"a {kind} bucket count")
        self.sum_ms += float(sum_ms)

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "buckets_ms": list(LATENCY_BUCKETS_MS),
            "counts": list(self.counts),
            "count": sum(self.counts),
            "sum_ms": self.sum_ms,
        }
        for name, q in QUANTILES.items():
            summary[name] = histogram_quantile(LATENCY_BUCKETS_MS, self.counts, q)
        return summary


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a count >= 0, not {value!r}")
    return value


class _Tally:
    """The counts of one scope: the whole pool, or one model."""

    __slots__ = ("errors", "images", "latency", "requests", "succeeded")

    def __init__(self) -> None:
        self.requests = 0
        self.succeeded = 0
        self.images = 0
        self.errors: dict[str, int] = {}
        self.latency = {kind: _Histogram() for kind in LATENCY_KINDS}

    def success(
        self, queue_wait_ms: float, inference_ms: float, total_ms: float, images: int
    ) -> None:
        self.requests += 1
        self.succeeded += 1
        self.images += images
        self.latency["queue_wait"].observe(queue_wait_ms)
        self.latency["inference"].observe(inference_ms)
        self.latency["total"].observe(total_ms)

    def error(self, code: str) -> None:
        self.requests += 1
        self.errors[code] = self.errors.get(code, 0) + 1

    def add(self, scope: Mapping[str, Any]) -> None:
        """Add a snapshot's scope (the pool's counts, or one model's)."""
        self.requests += _count(scope["requests"], "requests")
        self.succeeded += _count(scope["succeeded"], "succeeded")
        self.images += _count(scope["images"], "images")
        for code, count in scope["errors"].items():
            self.errors[str(code)] = self.errors.get(str(code), 0) + _count(
                count, f"errors[{code!r}]"
            )
        for kind, histogram in self.latency.items():
            histogram.add(scope["latency_ms"][kind], kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "images": self.images,
            "errors": dict(sorted(self.errors.items())),
            "latency_ms": {kind: histogram.as_dict() for kind, histogram in self.latency.items()},
        }


def _check_latency(kind: str, value_ms: float) -> None:
    if not (math.isfinite(value_ms) and value_ms >= 0):
        raise ValueError(f"the {kind} latency must be finite and >= 0 ms, not {value_ms}")


def _snapshot(pool: _Tally, models: Mapping[str, _Tally]) -> dict[str, Any]:
    snapshot = pool.as_dict()
    snapshot["models"] = {model_id: tally.as_dict() for model_id, tally in sorted(models.items())}
    return snapshot


class InferenceStats:
    """One replica's counts since it started; thread-safe (a lock), cheap (no allocation per record
    beyond the first time a model is seen)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = _Tally()
        self._models: dict[str, _Tally] = {}

    def record_success(
        self,
        model_id: str,
        *,
        queue_wait_ms: float,
        inference_ms: float,
        total_ms: float,
        images: int,
    ) -> None:
        """Count one answered request and its latencies.

        Raises:
            ValueError: a latency that is not a finite number of milliseconds >= 0, or a negative
                number of images (a caller's bug: it would corrupt every quantile after it).
        """
        _check_latency("queue_wait", queue_wait_ms)
        _check_latency("inference", inference_ms)
        _check_latency("total", total_ms)
        if images < 0:
            raise ValueError(f"the number of images must be >= 0, not {images}")
        with self._lock:
            self._pool.success(queue_wait_ms, inference_ms, total_ms, images)
            self._model(model_id).success(queue_wait_ms, inference_ms, total_ms, images)

    def record_error(self, model_id: str | None, code: str) -> None:
        """Count one refused or failed request by its error code; ``model_id=None`` (no model was
        resolved: unknown model, no credentials) counts in the pool only."""
        with self._lock:
            self._pool.error(code)
            if model_id is not None:
                self._model(model_id).error(code)

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, JSON-ready: ``requests`` (answered and refused), ``succeeded``,
        ``images``, ``errors`` (count by code), ``latency_ms`` (a histogram per kind in
        ``LATENCY_KINDS``: ``buckets_ms``, ``counts``, ``count``, ``sum_ms``, ``p50``, ``p95``,
        ``p99``, the quantiles None while empty), and ``models``: the same per model id."""
        with self._lock:
            return _snapshot(self._pool, self._models)

    def _model(self, model_id: str) -> _Tally:
        tally = self._models.get(model_id)
        if tally is None:
            tally = self._models[model_id] = _Tally()
        return tally


def merge_snapshots(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several replicas' snapshots, in the same shape: counts, sums and per-model entries
    added, quantiles recomputed from the merged counts. No snapshots: all zeros.

    Raises:
        ValueError: a snapshot not in the shape ``InferenceStats.snapshot`` gives (missing keys,
            other buckets, a count that is not a count >= 0).
    """
    pool = _Tally()
    models: dict[str, _Tally] = {}
    try:
        for snapshot in snapshots:
            pool.add(snapshot)
            for model_id, scope in snapshot["models"].items():
                models.setdefault(str(model_id), _Tally()).add(scope)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not an inference stats snapshot: {error!r}") from error
    return _snapshot(pool, models)


def normalized_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot read from elsewhere (a replica's file), checked and in canonical form.

    Raises:
        ValueError: it is not in the shape ``InferenceStats.snapshot`` gives.
    """
    return merge_snapshots([snapshot])
