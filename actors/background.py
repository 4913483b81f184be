"""The platform's background work as the API sees it: each call submits a Ray task and returns."""

from __future__ import annotations

from actors.conversion_task import submit_conversion
from actors.dataset_task import submit_preprocessing, submit_validation
from cvplatform.config import Settings


class RayBackgroundWork:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def convert_model(self, model_id: str) -> object:
        return submit_conversion(self._settings, model_id)

    def validate_dataset(self, dataset_id: str) -> object:
        return submit_validation(self._settings, dataset_id)

    def preprocess_dataset(self, preprocessing_id: str) -> object:
        return submit_preprocessing(self._settings, preprocessing_id)
