"""The platform's background work as the API sees it: each call submits a Ray task and returns."""

from __future__ import annotations

import logging

import ray

from actors.conversion_task import submit_conversion
from actors.dataset_task import submit_preprocessing, submit_validation
from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings

SCHEDULER_NAME = "cvp-scheduler"
log = logging.getLogger("cvp.api")


class RayBackgroundWork:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def convert_model(self, model_id: str) -> object:
        return submit_conversion(self._settings, model_id)

    def validate_dataset(self, dataset_id: str) -> object:
        return submit_validation(self._settings, dataset_id)

    def preprocess_dataset(self, preprocessing_id: str) -> object:
        return submit_preprocessing(self._settings, preprocessing_id)

    def wake_scheduler(self) -> object:
        """Tell the scheduler a job was queued (its own tick would find it within a second)."""
        try:
            scheduler = ray.get_actor(SCHEDULER_NAME, namespace=RAY_NAMESPACE)
        except ValueError:
            log.warning("the scheduler is not running; the job waits in the queue")
            return None
        return scheduler.wake.remote()
