"""What the platform resumes at start, all of it through the job kernel: conversions and
validations cut short by a stop start again, preprocessing runs that were running fail (their
output is incomplete), and the configured presets and sample datasets are registered.

Both functions return the registrations they started (Ray object references) so that the start
can wait for the lists to be complete before it says the platform is up.
"""

from __future__ import annotations

from typing import Any

from actors.datasets.job import validation_job
from actors.jobs.registry import Job
from actors.jobs.runner import submit
from actors.models.job import conversion_job
from cvplatform.config import Settings
from store import queries
from store.actor import StoreClient
from store.connections import reading
from store.operations import StoreOperations

REGISTER_PRESETS = Job(kind="register_presets", subject_id="presets", name="register-presets")
REGISTER_SAMPLES = Job(kind="register_samples", subject_id="samples", name="register-samples")


def start_model_work(settings: Settings) -> list[Any]:
    """Resume conversions cut short by a stop, then register the presets."""
    with reading(settings.db_path) as reader:
        pending = queries.models_awaiting_conversion(reader)
    for model_id in pending:
        submit(settings, conversion_job(model_id))
    return [submit(settings, REGISTER_PRESETS)] if settings.preset_names else []


def start_dataset_work(settings: Settings) -> list[Any]:
    """Resume validations, fail preprocessing runs cut short by a stop, register the samples."""
    with reading(settings.db_path) as reader:
        pending = queries.datasets_awaiting_validation(reader)
        interrupted = queries.preprocessings_running(reader)
    for dataset_id in pending:
        submit(settings, validation_job(dataset_id))
    ops = StoreOperations(StoreClient())
    for record in interrupted:
        ops.fail_preprocessing(
            preprocessing_id=record.id,
            reason="interrupted: the platform stopped; ask again",
        )
    return [submit(settings, REGISTER_SAMPLES)] if settings.sample_names else []
