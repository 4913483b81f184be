"""The SDK's calls for GA hyperparameter searches (mixed into :class:`cvplatform.client.Client`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from cvplatform.schemas import JobOut
from cvplatform.schemas.optimizations import (
    OptimizationOut,
    OptimizationPage,
    OptimizationRequest,
)


class OptimizationCalls:
    # These come from Client, which mixes these calls in.
    _http: httpx.Client
    _request: Callable[..., Any]

    def start_optimization(self, model_id: str, dataset_id: str, **settings: Any) -> JobOut:
        """Start a GA search (admin only).

        Args:
            model_id: a ready PyTorch model with an architecture.
            dataset_id: a ready dataset of the model's task.
            settings: the rest of :class:`cvplatform.schemas.optimizations.OptimizationRequest`
                (``population_size``, ``generations``, ``mutation_rate``, ``crossover_rate``,
                ``elite_count``, ``seed``, ``epochs_per_trial``, ``image_size``,
                ``gene_bounds``).

        Returns:
            The search's job; follow it with ``get_optimization`` or ``job_events``.

        Raises:
            ValueError: settings that cannot be valid (nothing is sent).
            Forbidden: the caller is not an admin.
            InvalidInput: the server refused the request (bounds wider than the defaults).
            Conflict: the model or the dataset is not ready.
        """
        request = OptimizationRequest(model_id=model_id, dataset_id=dataset_id, **settings)
        body = request.model_dump(mode="json", exclude_unset=True)
        return JobOut.model_validate(self._request("POST", "/api/v1/optimizations", json=body))

    def get_optimization(self, optimization_id: str) -> OptimizationOut:
        """The search: best configuration and fitness, fitness per generation, every trial."""
        return OptimizationOut.model_validate(
            self._request("GET", f"/api/v1/optimizations/{optimization_id}")
        )

    def list_optimizations(self, limit: int = 50, offset: int = 0) -> OptimizationPage:
        return OptimizationPage.model_validate(
            self._request("GET", "/api/v1/optimizations", params={"limit": limit, "offset": offset})
        )

    def export_optimization(
        self, optimization_id: str, path: str | Path, format: Literal["csv", "json"] = "csv"
    ) -> Path:
        """Write the lineage (CSV, one row per trial) or the whole search (JSON) to ``path``."""
        response = self._http.get(
            f"/api/v1/optimizations/{optimization_id}/export", params={"format": format}
        )
        if response.is_error:
            from cvplatform.client import error_from_response

            raise error_from_response(response)
        target = Path(path)
        target.write_bytes(response.content)
        return target

    def train_best(self, optimization_id: str, max_epochs: int = 10) -> JobOut:
        """Queue a full training from the best configuration the search found.

        Raises:
            Conflict: no trial has completed yet.
        """
        return JobOut.model_validate(
            self._request(
                "POST",
                f"/api/v1/optimizations/{optimization_id}/train-best",
                json={"max_epochs": max_epochs},
            )
        )
