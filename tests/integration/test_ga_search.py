"""A GA search on the live platform: Ray Tune runs its trials as trainings on the two GPU slots, a
training submitted mid-search is not starved, the results and their export, training the best
configuration, and cancelling a search."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvplatform.client import Client
from cvplatform.schemas import JobOut
from tests.helpers import wait_for
from tests.integration.conftest import LivePlatform

SEARCH = {
    "elite_count": 0,
    "image_size": [32, 32],
    "gene_bounds": {
        "batch_size": {"low": 8, "high": 16},
        "learning_rate": {"low": 1e-4, "high": 1e-2},
    },
}


@pytest.fixture(scope="module")
def admin_client(platform: LivePlatform) -> Iterator[Client]:
    with platform.admin() as client:
        yield client


@pytest.fixture(scope="module")
def kit(trainable: dict[str, str]) -> dict[str, str]:
    return trainable


def _trials(client: Client, search_id: str) -> list[JobOut]:
    page = client.list_jobs(parent_id=search_id, limit=100)
    return sorted(page.items, key=lambda job: job.request["trial_index"])


def _running_trials(client: Client, search_id: str, count: int) -> list[JobOut]:
    trials = [job for job in _trials(client, search_id) if job.status == "running"]
    search = client.get_job(search_id)
    assert search.status in ("queued", "running"), (search.status, search.error)
    assert len(trials) == count, [(job.request["trial_index"], job.status) for job in trials]
    return trials


def test_a_search_shares_the_slots_and_a_training_submitted_meanwhile_is_not_starved(
    admin_client: Client, kit: dict[str, str], tmp_path: Path
) -> None:
    search = admin_client.start_optimization(
        kit["model"], kit["dataset"], population_size=3, generations=1, epochs_per_trial=3, **SEARCH
    )
    assert search.kind == "ga_search"
    wait_for(lambda: _running_trials(admin_client, search.id, 2), timeout_s=180)
    # Both slots hold a trial; the search's third trial is not queued yet (two at most at once).
    assert len(_trials(admin_client, search.id)) == 2
    user = admin_client.start_training(
        kit["model"], kit["dataset"], image_size=[32, 32], batch_size=8, max_epochs=1
    )

    ended = admin_client.wait_for_job(search.id, timeout_s=300)
    assert ended.status == "completed", ended.error
    user_run = admin_client.wait_for_job(user.id, timeout_s=120)
    trials = _trials(admin_client, search.id)
    assert [trial.status for trial in trials] == ["completed"] * 3
    first_end = min(str(trial.finished_at) for trial in trials[:2])
    # It waited for a slot, took the first one freed, and the search's next trial came after it.
    assert str(user_run.started_at) >= first_end
    assert str(user_run.started_at) <= str(trials[2].started_at)

    result = admin_client.get_optimization(search.id)
    assert (result.status, result.trials_total, result.trials_done) == ("completed", 3, 3)
    fitnesses = [trial.fitness for trial in result.trials]
    assert all(fitness is not None and 0.0 <= fitness <= 1.0 for fitness in fitnesses)
    assert result.best_fitness == max(f for f in fitnesses if f is not None)
    assert result.best_hyperparameters == result.trials[result.best_trial or 0].genes
    assert [trial.job_id for trial in result.trials] == [trial.id for trial in trials]
    assert result.generations[0].best == result.best_fitness
    for trial, training in zip(result.trials, trials, strict=True):
        assert training.request["hyperparameters"]["batch_size"] == trial.genes["batch_size"]
        assert training.result is not None and training.result["trained_model_id"] is None
        assert training.result["fitness"] == trial.fitness

    lineage = admin_client.export_optimization(search.id, tmp_path / "lineage.csv")
    rows = list(csv.DictReader(io.StringIO(lineage.read_text())))
    assert [int(row["index"]) for row in rows] == [0, 1, 2]
    assert {row["operation"] for row in rows} == {"random"}

    best = admin_client.train_best(search.id, max_epochs=1)
    assert best.kind == "training" and best.parent_id is None
    assert (
        best.request["hyperparameters"]["learning_rate"]
        == result.best_hyperparameters["learning_rate"]
    )
    admin_client.cancel_job(best.id)  # a training like any other (tested in test_jobs.py)


def test_cancelling_a_search_stops_its_trials_and_keeps_what_was_evaluated(
    admin_client: Client, kit: dict[str, str]
) -> None:
    search = admin_client.start_optimization(
        kit["model"],
        kit["dataset"],
        population_size=4,
        generations=2,
        epochs_per_trial=100,
        **SEARCH,
    )
    wait_for(lambda: _running_trials(admin_client, search.id, 2), timeout_s=180)
    admin_client.cancel_job(search.id)

    ended = admin_client.wait_for_job(search.id, timeout_s=60)
    assert ended.status == "cancelled"

    def all_cancelled() -> list[JobOut]:
        trials = _trials(admin_client, search.id)
        assert all(job.status == "cancelled" for job in trials), [job.status for job in trials]
        return trials

    trials = wait_for(all_cancelled, timeout_s=30)
    assert len(trials) == 2
    result = admin_client.get_optimization(search.id)
    assert result.status == "cancelled"
    assert [trial.status for trial in result.trials[:2]] == ["failed", "failed"]
    assert all(trial.fitness is None for trial in result.trials)
