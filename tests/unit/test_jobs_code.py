"""The job queue in the store, mAP50, and the training helpers: plain code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from actors.training.classification import with_training_head, without_training_head
from actors.training.common import TrainingFailed, check_loss
from actors.training.job import image_size
from actors.training.metrics import box_iou, map50
from cvplatform.errors import Conflict, QueueFull
from cvplatform.schemas import Hyperparameters
from store import queries
from store.writer import StoreWriter


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    store_writer = StoreWriter(tmp_path / "cvp.db")
    yield store_writer
    store_writer.close()


def _job(number: int) -> dict[str, object]:
    return {"id": f"job{number}", "kind": "training", "name": f"job {number}", "request": {}}


def test_the_queue_is_fifo_and_bounded(writer: StoreWriter) -> None:
    for number in range(3):
        writer.enqueue_job(_job(number), max_queued=3)
    with pytest.raises(QueueFull, match="CVP_GPU_QUEUE_MAX=3"):
        writer.enqueue_job(_job(3), max_queued=3)
    assert [alert["kind"] for alert in queries.list_alerts(writer._db, 10, 0)] == ["gpu_queue_full"]
    claimed = [writer.claim_next_job() for _ in range(4)]
    assert [job.id if job else None for job in claimed] == ["job0", "job1", "job2", None]
    assert all(job.status == "running" and job.started_at for job in claimed if job)


def test_cancelling(writer: StoreWriter) -> None:
    writer.enqueue_job(_job(0), max_queued=5)
    writer.enqueue_job(_job(1), max_queued=5)
    assert writer.request_cancel("job1").status == "cancelled"  # queued: leaves at once
    running = writer.claim_next_job()
    assert running is not None
    asked = writer.request_cancel("job0")
    assert asked.status == "running" and asked.cancel_requested_at
    assert queries.cancel_requested(writer._db, "job0")
    writer.finish_job("job0", "cancelled", error="cancelled on request")
    with pytest.raises(Conflict, match="nothing to cancel"):
        writer.request_cancel("job0")
    # an ended job keeps its end
    assert writer.finish_job("job0", "completed").status == "cancelled"


def test_interrupted_jobs_fail_and_queued_ones_stay(writer: StoreWriter) -> None:
    writer.enqueue_job(_job(0), max_queued=5)
    writer.enqueue_job(_job(1), max_queued=5)
    writer.claim_next_job()
    assert writer.fail_interrupted_jobs() == ["job0"]
    first = queries.job_by_id(writer._db, "job0")
    assert first is not None and first.status == "failed" and "interrupted" in first.error
    second = queries.job_by_id(writer._db, "job1")
    assert second is not None and second.status == "queued"


def test_progress_and_events(writer: StoreWriter) -> None:
    writer.enqueue_job(_job(0), max_queued=5)
    writer.record_job_progress("job0", {"step": 3})
    writer.record_job_progress(
        "job0", {"step": 9, "epoch": 1}, {"kind": "epoch", "payload": {"epoch": 1}}
    )
    job = queries.job_by_id(writer._db, "job0")
    assert job is not None and job.progress == {"step": 9, "epoch": 1}
    events = queries.job_events_after(writer._db, "job0", 0)
    assert [(event["kind"], event["payload"]) for event in events] == [("epoch", {"epoch": 1})]
    assert queries.job_events_after(writer._db, "job0", events[-1]["id"]) == []


def test_box_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=float)
    iou = box_iou(boxes, boxes)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(25 / 175)


def test_map50() -> None:
    truth = [np.array([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30]], dtype=float)]
    perfect = [np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 1]], dtype=float)]
    assert map50(perfect, truth, num_classes=2) == pytest.approx(1.0)
    wrong_class = [np.array([[0, 0, 10, 10, 0.9, 1]], dtype=float)]
    assert map50(wrong_class, truth, num_classes=2) == 0.0
    half = [np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.95, 1]], dtype=float)]
    assert map50(half, truth, num_classes=2) == pytest.approx(0.5)
    assert map50([np.zeros((0, 6))], truth, num_classes=2) == 0.0


def test_heads_go_on_and_come_off() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7))
    with_training_head(model, 3, dropout=0.2)
    assert isinstance(model[1], nn.Sequential) and model[1][1].out_features == 3
    kept = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    weight = kept[1].weight.clone()
    with_training_head(kept, 3, dropout=0.2)
    assert torch.equal(kept[1][1].weight, weight)  # same classes: the trained layer is kept
    without_training_head(kept)
    assert isinstance(kept[1], nn.Linear) and set(kept.state_dict()) == {"1.weight", "1.bias"}
    with pytest.raises(TrainingFailed, match="no Linear"):
        with_training_head(nn.Sequential(nn.Conv2d(3, 4, 1)), 3, 0.1)


def test_a_nan_loss_stops_the_run() -> None:
    with pytest.raises(TrainingFailed, match="lower the learning rate"):
        check_loss(torch.tensor(float("nan")), epoch=2, batch=5)
    assert check_loss(torch.tensor(0.5), 1, 1) == 0.5


def test_image_size_choice() -> None:
    hp = Hyperparameters()
    model = [3, 224, 224]
    uniform = {"min": [32, 32], "max": [32, 32]}
    mixed = {"min": [20, 20], "max": [640, 480]}
    video = {"min": [160, 120], "max": [160, 120]}
    assert image_size(hp, model, "classification", uniform) == (32, 32)
    assert image_size(hp, model, "classification", mixed) == (224, 224)
    assert image_size(hp, model, "detection", video) == (160, 160)  # YOLO wants multiples of 32
    custom = Hyperparameters(image_size=(64, 48))
    assert image_size(custom, model, "classification", uniform) == (64, 48)
    assert image_size(hp, None, "classification", None) == (224, 224)
