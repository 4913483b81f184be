"""The prediction pool's Prometheus metrics: Ray's metrics, which Ray exports on the node's
metrics endpoint with a ``ray_`` prefix (``ray_cvp_inference_requests_total``, ...).

A Ray shell: the counting that the JSON metrics and ``/v1/health`` show lives in the pure
``cvplatform.inference.stats``; this only mirrors the same events to Prometheus. Ray's metrics
need no running cluster to be created or recorded (they are dropped until a node exports them),
so the deployment can build this in any process.
"""

from __future__ import annotations

from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram, Metric

from cvplatform.inference.stats import LATENCY_BUCKETS_MS

NO_MODEL = "-"  # the model tag of an error no model was resolved for (unknown model, no key)


class PrometheusMetrics:
    """Ray's metrics (exported on the node's Prometheus endpoint), names that say what they are."""

    def __init__(self, replica: str) -> None:
        self._replica_tags = {"replica": replica}
        self._requests = Counter(
            "cvp_inference_requests_total",
            description="Prediction requests answered, by model and outcome (ok or error).",
            tag_keys=("model", "outcome"),
        )
        self._errors = Counter(
            "cvp_inference_errors_total",
            description="Prediction requests refused or failed, by model and error code.",
            tag_keys=("model", "code"),
        )
        self._images = Counter(
            "cvp_inference_images_total",
            description="Images (or tensor samples) predicted, by model.",
            tag_keys=("model",),
        )
        boundaries = [float(bound) for bound in LATENCY_BUCKETS_MS]
        self._queue_wait = Histogram(
            "cvp_inference_queue_wait_ms",
            description="Time a prediction waited for a free worker, in milliseconds.",
            boundaries=boundaries,
            tag_keys=("model",),
        )
        self._inference = Histogram(
            "cvp_inference_latency_ms",
            description="Time the engine took to run a prediction's batch, in milliseconds.",
            boundaries=boundaries,
            tag_keys=("model",),
        )
        self._total = Histogram(
            "cvp_inference_total_ms",
            description="Time from a prediction's arrival to its answer, in milliseconds.",
            boundaries=boundaries,
            tag_keys=("model",),
        )
        self._busy = Gauge(
            "cvp_inference_busy",
            description="Predictions being inferred now on this replica.",
            tag_keys=("replica",),
        )
        self._queued = Gauge(
            "cvp_inference_queued",
            description="Predictions waiting for a worker now on this replica.",
            tag_keys=("replica",),
        )
        self._models_loaded = Gauge(
            "cvp_inference_models_loaded",
            description="Models loaded now on this replica.",
            tag_keys=("replica",),
        )

    def record_success(
        self,
        model_id: str,
        *,
        queue_wait_ms: float,
        inference_ms: float,
        total_ms: float,
        images: int,
    ) -> None:
        model = {"model": model_id}
        self._requests.inc(1, tags={"model": model_id, "outcome": "ok"})
        if images > 0:  # Ray's counters refuse an increment of 0
            self._images.inc(images, tags=model)
        self._queue_wait.observe(queue_wait_ms, tags=model)
        self._inference.observe(inference_ms, tags=model)
        self._total.observe(total_ms, tags=model)

    def record_error(self, model_id: str | None, code: str) -> None:
        model = NO_MODEL if model_id is None else model_id
        self._requests.inc(1, tags={"model": model, "outcome": "error"})
        self._errors.inc(1, tags={"model": model, "code": code})

    def set_pool(self, *, busy: int, queued: int, models_loaded: int) -> None:
        self._busy.set(busy, tags=self._replica_tags)
        self._queued.set(queued, tags=self._replica_tags)
        self._models_loaded.set(models_loaded, tags=self._replica_tags)

    def described(self) -> list[dict[str, Any]]:
        """Each metric's name, description, tag keys (and a histogram's boundaries), as Ray holds
        them: for documentation and checks."""
        metrics: list[Metric] = [
            self._requests,
            self._errors,
            self._images,
            self._queue_wait,
            self._inference,
            self._total,
            self._busy,
            self._queued,
            self._models_loaded,
        ]
        return [dict(metric.info) for metric in metrics]
