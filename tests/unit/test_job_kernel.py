"""The job kernel without Ray: the scheduling decision, running a job to its end, the reporter,
and real dataset jobs run in-process on a real store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.datasets.job import preprocessing_job, validation_job
from actors.datasets.storage import UPLOAD_ARCHIVE
from actors.jobs import registry
from actors.jobs.registry import Job, JobCancelled, JobKind, Outcome, run_to_end
from actors.jobs.reporter import JobReporter
from actors.jobs.scheduling import QueuedJob, RunningJob, Start, gpu_share_per_slot, next_starts
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput
from store import queries
from tests import datasets_kit
from tests.jobs_kit import Submitted, WriterStore, reporter_for, settings_in

# --- the scheduling decision ---------------------------------------------------------------------


def _queued(*slots: int) -> list[QueuedJob]:
    return [QueuedJob(f"q{index}", needed) for index, needed in enumerate(slots)]


def test_free_slots_go_to_the_oldest_jobs() -> None:
    starts = next_starts(_queued(1, 1, 1), [], slots=2, gpus=0)
    assert starts == [Start("q0", 1, 0.0), Start("q1", 1, 0.0)]


def test_nothing_starts_when_every_slot_is_held() -> None:
    running = [RunningJob("r0", 1), RunningJob("r1", 1)]
    assert next_starts(_queued(1), running, slots=2, gpus=1) == []


def test_a_job_that_holds_no_slot_never_waits_and_never_overtakes_for_a_slot() -> None:
    # q0 waits for a slot; q1 (a GA driver, no slot) starts at once; q2 stays behind q0.
    running = [RunningJob("r0", 2)]
    assert next_starts(_queued(1, 0, 1), running, slots=2, gpus=1) == [Start("q1", 0, 0.0)]


def test_several_processes_of_one_job_hold_several_slots() -> None:
    # A search running two trials holds both slots; one trial ending frees one.
    assert next_starts(_queued(1), [RunningJob("ga", 2)], slots=2, gpus=1) == []
    assert next_starts(_queued(1, 1), [RunningJob("ga", 1)], slots=2, gpus=1) == [
        Start("q0", 1, 0.5)
    ]


def test_a_job_that_needs_more_slots_than_are_free_waits_and_keeps_its_place() -> None:
    assert next_starts(_queued(2, 1), [RunningJob("r", 1)], slots=2, gpus=0) == []


@pytest.mark.parametrize(
    ("slots", "gpus", "share"), [(2, 0, 0.0), (2, 1, 0.5), (2, 2, 1.0), (1, 1, 1.0), (4, 8, 1.0)]
)
def test_each_slot_gets_its_share_of_the_gpus(slots: int, gpus: float, share: float) -> None:
    assert gpu_share_per_slot(slots, gpus) == share


# --- running a job to its end ------------------------------------------------------------------

ENDS: list[tuple[str, Outcome]] = []


def run_echo(job: Job, reporter: JobReporter) -> Outcome:
    behaviour = job.request["behaviour"]
    if behaviour == "cancel":
        raise JobCancelled
    if behaviour == "refuse":
        raise InvalidInput("the request names no such thing")
    if behaviour == "crash":
        raise ZeroDivisionError("division by zero")
    return Outcome(behaviour, result={"seen": job.subject_id})


def end_echo(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    ENDS.append((job.subject_id, outcome))


@pytest.fixture
def echo_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    kind = JobKind(
        "echo",
        run=f"{__name__}:run_echo",
        record_end=f"{__name__}:end_echo",
        label="the echo",
    )
    monkeypatch.setitem(registry.KINDS, "echo", kind)
    ENDS.clear()
    yield


@pytest.mark.parametrize(
    ("behaviour", "status", "reason"),
    [
        ("completed", "completed", None),
        ("cancel", "cancelled", "cancelled on request"),
        ("refuse", "failed", "the request names no such thing"),
        ("crash", "failed", "the echo crashed: ZeroDivisionError: division by zero"),
    ],
)
def test_every_way_a_job_ends_is_recorded_once(
    echo_kind: None,
    settings: Settings,
    store: WriterStore,
    behaviour: str,
    status: str,
    reason: str | None,
) -> None:
    job = Job("echo", "subject-1", "echo", request={"behaviour": behaviour})
    outcome = run_to_end(job, reporter_for(settings, job, store))
    assert (outcome.status, outcome.reason) == (status, reason)
    assert [("subject-1", outcome)] == ENDS


def test_a_job_whose_subject_is_gone_records_nothing(
    echo_kind: None, settings: Settings, store: WriterStore
) -> None:
    job = Job("echo", "subject-2", "echo", request={"behaviour": "skipped"})
    assert run_to_end(job, reporter_for(settings, job, store)).status == "skipped"
    assert ENDS == []


def test_an_unknown_kind_is_named_with_the_known_ones(
    settings: Settings, store: WriterStore
) -> None:
    job = Job("nonesuch", "x", "x")
    with pytest.raises(KeyError, match=r"no job kind 'nonesuch'.*training"):
        run_to_end(job, reporter_for(settings, job, store))


def test_every_registered_kind_resolves_to_its_functions() -> None:
    for kind in registry.KINDS.values():
        run, record_end = kind.load()
        assert callable(run) and callable(record_end), kind.name


# --- the reporter --------------------------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracked_job(store: WriterStore) -> Job:
    store.writer.enqueue_job({"id": "j1", "kind": "training", "name": "t", "request": {}}, 5)
    row = store.writer.claim_job("j1")
    assert row is not None
    return registry.queued_job(row)


def test_progress_is_rate_limited_and_events_are_written_at_once(
    settings: Settings, store: WriterStore
) -> None:
    job, ticks = _tracked_job(store), Ticks()
    reporter = JobReporter(settings, job, store, monotonic=ticks)
    reporter.on_batch(epoch=1, batch=1, batches=10, step=1)
    reporter.on_batch(epoch=1, batch=2, batches=10, step=2)  # within the second: not written
    assert store.calls["record_job_progress"] == 1
    ticks.now += 1.0
    reporter.on_batch(epoch=1, batch=3, batches=10, step=3)
    reporter.on_epoch({"epoch": 1, "val_accuracy": 0.5})
    assert store.calls["record_job_progress"] == 3
    stored = queries.job_by_id(store.writer._db, "j1")
    assert stored is not None and stored.progress["step"] == 3
    events = queries.job_events_after(store.writer._db, "j1", 0)
    assert [(event["kind"], event["payload"]) for event in events] == [
        ("epoch", {"epoch": 1, "val_accuracy": 0.5})
    ]
    reporter.close()


def test_cancellation_is_seen_within_a_check_interval(
    settings: Settings, store: WriterStore
) -> None:
    job, ticks = _tracked_job(store), Ticks()
    reporter = JobReporter(settings, job, store, monotonic=ticks)
    assert not reporter.should_stop()
    store.writer.request_cancel("j1")
    assert not reporter.should_stop()  # checked 0 s ago: not asked again yet
    ticks.now += 0.25
    assert reporter.should_stop()
    with pytest.raises(JobCancelled):
        reporter.stop_if_asked()
    reporter.close()


def test_an_untracked_job_reports_to_the_log_only(settings: Settings, store: WriterStore) -> None:
    job = Job("conversion", "m1", "convert")
    reporter = reporter_for(settings, job, store)
    reporter.phase("converting")
    assert not reporter.should_stop()
    assert store.calls["record_job_progress"] == 0
    with pytest.raises(RuntimeError, match="cannot start"):
        reporter.submit(job)
    reporter.close()


# --- real dataset jobs, in-process ---------------------------------------------------------------


def _uploaded_dataset(settings: Settings, store: WriterStore) -> str:
    dataset_id = uuid.uuid4().hex
    folder = settings.artifacts_dir / "datasets" / dataset_id
    folder.mkdir(parents=True)
    archive = datasets_kit.class_folders(folder / UPLOAD_ARCHIVE, classes=2, per_class=4)
    store.call_sync(
        "create_dataset",
        dataset={
            "id": dataset_id,
            "name": "toy",
            "task_type": "classification",
            "source_filename": "toy.zip",
            "source_sha256": "0" * 64,
            "source_size_bytes": archive.stat().st_size,
            "files_path": f"datasets/{dataset_id}",
        },
    )
    return dataset_id


def test_validation_and_preprocessing_run_through_the_kernel(
    settings: Settings, store: WriterStore
) -> None:
    dataset_id = _uploaded_dataset(settings, store)
    job = validation_job(dataset_id)
    assert run_to_end(job, reporter_for(settings, job, store)).status == "ready"
    dataset = queries.dataset_by_id(store.writer._db, dataset_id)
    assert dataset is not None
    assert (dataset.status, dataset.num_samples, dataset.num_classes) == ("ready", 8, 2)

    claim = store.call_sync(
        "start_preprocessing",
        preprocessing_id="p1",
        dataset_id=dataset_id,
        cache_key="k1",
        config={"image_size": [16, 16], "split": [0.5, 0.5, 0.0], "seed": 3},
        output_path="preprocessed/k1",
        created_by=None,
    )
    job = preprocessing_job(claim.record.id)
    assert run_to_end(job, reporter_for(settings, job, store)).status == "ready"
    done = queries.preprocessing_by_id(store.writer._db, "p1")
    assert done is not None and done.status == "ready"
    assert sum(done.split_counts.values()) == 8
    assert (settings.artifacts_dir / "preprocessed/k1/split.json").exists()


def test_a_broken_archive_ends_invalid_with_the_reason(
    settings: Settings, store: WriterStore
) -> None:
    dataset_id = _uploaded_dataset(settings, store)
    archive = settings.artifacts_dir / "datasets" / dataset_id / UPLOAD_ARCHIVE
    archive.write_bytes(b"this is not a zip file")
    job = validation_job(dataset_id)
    assert run_to_end(job, reporter_for(settings, job, store)).status == "invalid"
    dataset = queries.dataset_by_id(store.writer._db, dataset_id)
    assert dataset is not None and dataset.status == "invalid" and dataset.status_reason


def test_registering_samples_submits_their_validations(tmp_path: Path, store: WriterStore) -> None:
    settings = settings_in(tmp_path / "data", samples="digits")
    submitted = Submitted()
    job = Job("register_samples", "samples", "register-samples")
    assert run_to_end(job, reporter_for(settings, job, store, submitted)).status == "completed"
    assert [queued.kind for queued in submitted] == ["validation"]
    again = Submitted()
    run_to_end(job, reporter_for(settings, job, store, again))
    assert again == []  # registered once
