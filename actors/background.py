"""The platform's background work as the API sees it: each call submits a job and returns."""

from __future__ import annotations

import logging

import ray

from actors.datasets.job import preprocessing_job, validation_job
from actors.jobs.runner import submit
from actors.models.job import conversion_job
from actors.scheduler import SCHEDULER_NAME
from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings

log = logging.getLogger("cvp.api")


class RayBackgroundWork:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def convert_model(self, model_id: str) -> object:
        return submit(self._settings, conversion_job(model_id))

    def validate_dataset(self, dataset_id: str) -> object:
        return submit(self._settings, validation_job(dataset_id))

    def preprocess_dataset(self, preprocessing_id: str) -> object:
        return submit(self._settings, preprocessing_job(preprocessing_id))

    def wake_scheduler(self) -> object:
        """Tell the scheduler a job was queued (its own tick would find it within a second)."""
        try:
            scheduler = ray.get_actor(SCHEDULER_NAME, namespace=RAY_NAMESPACE)
        except ValueError:
            log.warning("the scheduler is not running; the job waits in the queue")
            return None
        return scheduler.wake.remote()
