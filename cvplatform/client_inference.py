"""The SDK's calls for predictions and the inference pool (mixed into
:class:`cvplatform.client.Client`). Predictions go to Ray Serve's port, the rest to the API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from cvplatform.schemas.inference import (
    InferenceMetricsOut,
    ModelServingOut,
    PredictionOut,
    WarmedOut,
)


class InferenceCalls:
    # These come from Client, which mixes these calls in.
    _serve: httpx.Client
    _request: Callable[..., Any]
    _raise_for: Callable[[httpx.Response], None]

    def predict(
        self,
        model_id: str,
        images: Sequence[str | Path | bytes],
        top_k: int = 5,
        **detection: float,
    ) -> PredictionOut:
        """Predict with a ready model on the inference pool (any role may).

        Args:
            images: JPEG or PNG files (paths) or their bytes: one request, one batch.
            top_k: labels per image (classification).
            detection: ``confidence`` and ``iou`` thresholds (detection).
        """
        files = [("files", _named(index, image)) for index, image in enumerate(images)]
        response = self._serve.post(
            f"/v1/models/{model_id}/predict", files=files, params={"top_k": top_k, **detection}
        )
        self._raise_for(response)
        return PredictionOut.model_validate(response.json())

    def warm_model(self, model_id: str) -> WarmedOut:
        """Load a ready model on the pool now, so that its first prediction is not a cold load."""
        return WarmedOut.model_validate(self._request("POST", f"/api/v1/models/{model_id}/serving"))

    def model_serving(self, model_id: str) -> ModelServingOut:
        """Which replicas hold the model, and its counts since they started."""
        return ModelServingOut.model_validate(
            self._request("GET", f"/api/v1/models/{model_id}/serving")
        )

    def inference_metrics(self) -> InferenceMetricsOut:
        """The pool's workers, queue, models and latency histograms (admin)."""
        return InferenceMetricsOut.model_validate(self._request("GET", "/api/v1/inference/metrics"))


def _named(index: int, image: str | Path | bytes) -> tuple[str, bytes]:
    if isinstance(image, bytes):
        return f"image {index}", image
    path = Path(image)
    return path.name, path.read_bytes()
