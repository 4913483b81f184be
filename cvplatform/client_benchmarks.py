"""The SDK's calls for benchmarks (mixed into :class:`cvplatform.client.Client`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from cvplatform.benchmarking.constraints import parse_constraint
from cvplatform.schemas import BenchmarkOut, BenchmarkPage, BenchmarkRequest, ConstraintIn, JobOut


class BenchmarkCalls:
    # This comes from Client, which mixes these calls in.
    _request: Callable[..., Any]

    def start_benchmark(
        self,
        model_id: str,
        constraints: Sequence[str | dict[str, Any]] = (),
        **settings: Any,
    ) -> JobOut:
        """Queue a benchmark of a ready model; it starts when a GPU slot is free.

        Args:
            model_id: the model.
            constraints: ``"latency_p95_ms < 50"`` or ``{"metric", "op", "value"}`` each.
            settings: the rest of :class:`cvplatform.schemas.BenchmarkRequest` (``engines``,
                ``batch_sizes``, ``input_shape``, ``warmup_iterations``, ``iterations``, ``seed``,
                ``cpu_threads``, ``objective``).

        Returns:
            The queued job; follow it with ``job_events`` or ``wait_for_job``.

        Raises:
            ValueError: a constraint or setting that cannot be valid (nothing is sent).
            InvalidInput: the server refused the request (an input shape that does not fit).
            Conflict: the model is not ready.
            QueueFull: the GPU queue is at its bound (HTTP 429).
        """
        parsed = [
            ConstraintIn.model_validate(
                asdict(parse_constraint(item)) if isinstance(item, str) else item
            )
            for item in constraints
        ]
        request = BenchmarkRequest(model_id=model_id, constraints=parsed, **settings)
        body = request.model_dump(mode="json", exclude_unset=True)
        return JobOut.model_validate(self._request("POST", "/api/v1/benchmarks", json=body))

    def get_benchmark(self, benchmark_id: str) -> BenchmarkOut:
        """The benchmark with every engine and batch size measured so far; once completed, its
        ``result`` holds the environment, the verdicts and the selection."""
        return BenchmarkOut.model_validate(
            self._request("GET", f"/api/v1/benchmarks/{benchmark_id}")
        )

    def list_benchmarks(
        self,
        model_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> BenchmarkPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if model_id:
            params["model_id"] = model_id
        if status:
            params["status"] = status
        return BenchmarkPage.model_validate(
            self._request("GET", "/api/v1/benchmarks", params=params)
        )
