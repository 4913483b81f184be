"""The GPU job scheduler and training through the live platform: two slots, a bounded FIFO queue,
cancellation, failures, live progress, results and history."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvplatform.client import Client
from cvplatform.errors import Conflict, InvalidInput, QueueFull
from tests import models_kit
from tests.helpers import unique, wait_for
from tests.integration.conftest import GPU_QUEUE_MAX, LivePlatform

FAST = {"image_size": [32, 32], "batch_size": 8}
ENDLESS = {**FAST, "max_epochs": 1000}


@pytest.fixture(scope="module")
def engineer(platform: LivePlatform) -> Iterator[Client]:
    _, client = platform.new_user("engineer")
    yield client
    client.close()


def _small_state_dict(path: Path, architecture: str) -> Path:
    import torch
    from torchvision import models

    torch.manual_seed(0)
    torch.save(models.get_model(architecture, weights=None, num_classes=5).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def kit(
    engineer: Client, trainable: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The shared trainable model and tiny dataset, and a few things to refuse."""
    folder = tmp_path_factory.mktemp("jobs")
    no_head = engineer.upload_model(
        _small_state_dict(folder / "squeeze.pth", "squeezenet1_1"),
        unique("squeeze"),
        "classification",
        architecture="squeezenet1_1",
        num_classes=5,  # its head is a convolution: the class count cannot be read off it
        input_shape=[3, 32, 32],
    )
    onnx = engineer.upload_model(
        models_kit.onnx_classifier(folder / "m.onnx"), unique("onnx"), "classification"
    )
    broken = engineer.upload_model(
        models_kit.random_bytes(folder / "broken.onnx"), unique("broken"), "classification"
    )
    detector = engineer.upload_model(
        models_kit.onnx_detector(folder / "d.onnx"), unique("det"), "detection"
    )
    for model_id in (no_head.id, onnx.id, detector.id):
        assert engineer.wait_for_model(model_id, timeout_s=240).status == "ready"
    assert engineer.wait_for_model(broken.id).status == "invalid"
    return {
        "model": trainable["model"],
        "no_head": no_head.id,
        "onnx": onnx.id,
        "detector": detector.id,
        "broken": broken.id,
        "dataset": trainable["dataset"],
    }


def _status(client: Client, job_id: str) -> str:
    return client.get_job(job_id).status


def test_two_slots_a_fifo_queue_and_cancellation(
    platform: LivePlatform, admin: Client, engineer: Client, kit: dict[str, str]
) -> None:
    jobs = [engineer.start_training(kit["model"], kit["dataset"], **ENDLESS).id for _ in range(3)]

    def two_running_one_queued() -> None:
        assert [_status(engineer, job) for job in jobs] == ["running", "running", "queued"]

    wait_for(two_running_one_queued, timeout_s=120)
    # The queue is bounded: with two running, GPU_QUEUE_MAX may wait; the next is refused.
    waiting = [
        engineer.start_training(kit["model"], kit["dataset"], **ENDLESS).id
        for _ in range(GPU_QUEUE_MAX - 1)
    ]
    with pytest.raises(QueueFull) as refused:
        engineer.start_training(kit["model"], kit["dataset"], **ENDLESS)
    assert refused.value.http_status == 429  # type: ignore[attr-defined]
    assert any(alert.kind == "gpu_queue_full" for alert in admin.alerts())

    wait_for(lambda: admin.get_job(jobs[0]).progress.get("step", 0) > 0 or 1 / 0, timeout_s=120)
    asked = time.monotonic()
    admin.cancel_job(jobs[0])
    wait_for(lambda: _status(admin, jobs[0]) == "cancelled" or 1 / 0, timeout_s=10, interval_s=0.05)
    assert time.monotonic() - asked < 2.5  # "within 2 s", plus the polling here
    cancelled = admin.get_job(jobs[0])
    assert cancelled.progress.get("step", 0) > 0  # its history so far is kept
    wait_for(lambda: _status(engineer, jobs[2]) == "running" or 1 / 0, timeout_s=60)
    # The queued ones first: a slot freed by a cancelled running job goes to the next in line.
    for job in [*waiting, jobs[1], jobs[2]]:
        admin.cancel_job(job)
    for job in waiting:  # queued jobs leave the queue at once
        assert _status(admin, job) == "cancelled"
    for job in jobs[1:]:
        assert admin.wait_for_job(job, timeout_s=30).status == "cancelled"
    with pytest.raises(Conflict, match="nothing to cancel"):
        admin.cancel_job(jobs[0])


def test_a_training_runs_to_the_end(
    platform: LivePlatform, engineer: Client, kit: dict[str, str]
) -> None:
    job = engineer.start_training(
        kit["model"], kit["dataset"], **FAST, max_epochs=2, optimizer="adamw"
    )
    assert job.status == "queued" and job.name.startswith("train ")
    events = list(engineer.job_events(job.id, timeout_s=300))
    kinds = [kind for kind, _ in events]
    assert kinds.count("epoch") == 2 and kinds[-1] == "end"
    epochs = [data for kind, data in events if kind == "epoch"]
    assert [epoch["epoch"] for epoch in epochs] == [1, 2]
    assert {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "images_per_s",
        "elapsed_s",
        "eta_s",
    } <= set(epochs[0])
    done = engineer.get_job(job.id)
    assert done.status == "completed", done.error
    assert done.device == "cpu"
    result = done.result or {}
    assert {"final_accuracy", "final_loss", "best_epoch", "best_val_accuracy", "duration_s"} <= set(
        result
    )
    assert result["device"] == "cpu" and result["best_epoch"] in (1, 2)
    trained = engineer.wait_for_model(result["trained_model_id"], timeout_s=240)
    assert trained.status == "ready" and trained.parent_model_id == kit["model"]
    assert trained.num_classes == 3 and trained.outputs[0].shape == ["batch", 3]

    history = engineer.training_history(kit["model"])
    assert job.id in [row["job_id"] for row in history]
    rows = list(csv.DictReader(io.StringIO(engineer.training_history(kit["model"], format="csv"))))
    ours = next(row for row in rows if row["job_id"] == job.id)
    assert (
        ours["status"] == "completed"
        and ours["hp_optimizer"] == "adamw"
        and float(ours["duration_s"]) > 0
    )


def test_a_failing_job_says_why_and_the_next_starts(engineer: Client, kit: dict[str, str]) -> None:
    failing = engineer.start_training(kit["no_head"], kit["dataset"], **FAST, max_epochs=1)
    following = engineer.start_training(kit["model"], kit["dataset"], **FAST, max_epochs=1)
    failed = engineer.wait_for_job(failing.id, timeout_s=300)
    assert failed.status == "failed" and "no Linear classifier layer" in (failed.error or "")
    assert engineer.wait_for_job(following.id, timeout_s=300).status == "completed"


def test_a_diverging_loss_fails_the_job(engineer: Client, kit: dict[str, str]) -> None:
    job = engineer.start_training(
        kit["model"],
        kit["dataset"],
        **FAST,
        max_epochs=30,
        learning_rate=10.0,
        optimizer="sgd",
        weight_decay=0.0,
        augmentation={"enabled": False},
    )
    ended = engineer.wait_for_job(job.id, timeout_s=300)
    assert ended.status == "failed", ended.status
    assert "the loss became" in (ended.error or "") and "lower the learning rate" in (
        ended.error or ""
    )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"model_id": "onnx"}, InvalidInput, "PyTorch state-dict model"),
        ({"model_id": "broken"}, Conflict, "is invalid; train it once it is ready"),
        ({"model_id": "detector"}, InvalidInput, "cannot train on a classification dataset"),
        ({"batch_size": 4096}, InvalidInput, "larger than the training split"),
    ],
)
def test_trainings_refused_up_front(
    engineer: Client,
    kit: dict[str, str],
    change: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    model = kit.get(str(change.get("model_id")), change.get("model_id", kit["model"]))
    dataset = change.get("dataset_id", kit["dataset"])
    hyperparameters = {k: v for k, v in change.items() if k not in ("model_id", "dataset_id")}
    with pytest.raises(error, match=message):
        engineer.start_training(str(model), str(dataset), **hyperparameters)  # type: ignore[arg-type]


def test_models_and_datasets_in_use_are_not_deleted(
    admin: Client, engineer: Client, kit: dict[str, str]
) -> None:
    job = engineer.start_training(kit["model"], kit["dataset"], **ENDLESS)
    try:
        with pytest.raises(Conflict, match="used by a queued or running job"):
            admin.delete_model(kit["model"])
        with pytest.raises(Conflict, match="used by a queued or running job"):
            admin.delete_dataset(kit["dataset"])
    finally:
        admin.cancel_job(job.id)
        admin.wait_for_job(job.id, timeout_s=60)


def test_a_trained_model_is_benchmarked_with_the_accuracy_each_engine_keeps(
    engineer: Client, kit: dict[str, str]
) -> None:
    trained = engineer.wait_for_job(
        engineer.start_training(kit["model"], kit["dataset"], **FAST, max_epochs=1).id,
        timeout_s=300,
    )
    assert trained.status == "completed", trained.error
    model_id = (trained.result or {})["trained_model_id"]
    assert engineer.wait_for_model(model_id, timeout_s=240).status == "ready"

    job = engineer.start_benchmark(
        model_id,
        constraints=["latency_p95_ms < 5000", "accuracy_drop_pp <= 100"],
        batch_sizes=[1, 4],
        warmup_iterations=2,
        iterations=10,
    )
    assert (job.kind, job.status) == ("benchmark", "queued")
    kinds = [kind for kind, _ in engineer.job_events(job.id, timeout_s=300)]
    assert "result" in kinds and kinds[-1] == "end"

    benchmark = engineer.get_benchmark(job.id)
    assert benchmark.status == "completed", benchmark.error
    results = {(row.engine, row.batch_size): row for row in benchmark.results}
    assert len(results) == 8  # four engines (every one by default) at two batch sizes
    for engine in ("onnxruntime_cuda", "tensorrt_fp16"):
        assert results[(engine, 1)].status == "unavailable" and results[(engine, 1)].error
    fp32, int8 = results[("onnxruntime_cpu", 4)], results[("onnxruntime_cpu_int8", 4)]
    assert fp32.status == int8.status == "completed"
    assert fp32.metrics["accuracy_drop_pp"] == 0.0 and fp32.metrics["agreement_percent"] == 100.0
    assert 0 <= (int8.metrics["accuracy_percent"] or -1) <= 100
    assert int8.metrics["agreement_percent"] is not None
    assert "training split of dataset" in int8.details["setup"]["calibration_source"]
    assert "validation split of dataset" in fp32.details["accuracy"]["source"]
    result = benchmark.result or {}
    assert result["selected"] in {
        f"{e}@{b}" for e in ("onnxruntime_cpu", "onnxruntime_cpu_int8") for b in (1, 4)
    }
    assert engineer.list_benchmarks(model_id=model_id).total == 1

    # Its report was kept when it completed: every view and format from the stored data.
    assert benchmark.report_id and engineer.list_reports(model_id=model_id).total == 1
    pdf = engineer.get_report(benchmark.report_id, view="simple", format="pdf")
    assert pdf.startswith(b"%PDF") and pdf == engineer.get_report(
        benchmark.report_id, view="simple", format="pdf"
    )
    technical = json.loads(engineer.get_report(benchmark.report_id, format="json"))
    assert technical["report"]["id"] == benchmark.report_id
