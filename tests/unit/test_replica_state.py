"""The pool's replica state files on a real temporary folder: published atomically, read back,
a dead replica's file removed, a bad file skipped, and several replicas summed into the pool."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cvplatform.clock import to_iso
from cvplatform.inference.replica_state import (
    LoadedModel,
    ReplicaState,
    pid_alive,
    pool_summary,
    publish,
    read_live,
    remove,
    state_file,
)
from cvplatform.inference.stats import InferenceStats, merge_snapshots

ROOT = Path(__file__).parents[2]
STARTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIVE_PIDS = {101, 102, 103}


def is_alive(pid: int) -> bool:
    return pid in LIVE_PIDS


def loaded(model_id: str, engine: str = "onnxruntime_cpu") -> LoadedModel:
    return LoadedModel(
        model_id=model_id,
        engine=engine,
        loaded_at=to_iso(STARTED + timedelta(seconds=5)),
        last_used_at=to_iso(STARTED + timedelta(seconds=30)),
        load_seconds=0.42,
    )


def a_state(
    replica: str,
    pid: int,
    *,
    busy: int = 1,
    queued: int = 0,
    models: tuple[LoadedModel, ...] = (),
    stats: InferenceStats | None = None,
) -> ReplicaState:
    return ReplicaState(
        replica=replica,
        pid=pid,
        started_at=to_iso(STARTED),
        updated_at=to_iso(STARTED + timedelta(minutes=1)),
        workers=5,
        busy=busy,
        queued=queued,
        queue_max=500,
        models=models,
        stats=(stats or InferenceStats()).snapshot(),
    )


def stats_with(model_id: str, total_ms: float, errors: int = 0) -> InferenceStats:
    stats = InferenceStats()
    stats.record_success(
        model_id, queue_wait_ms=0.5, inference_ms=total_ms - 1, total_ms=total_ms, images=2
    )
    for _ in range(errors):
        stats.record_error(model_id, "queue_full")
    return stats


def test_a_published_state_reads_back_equal(tmp_path: Path) -> None:
    state = a_state("cvp#Pool#a1", 101, models=(loaded("digits"),), stats=stats_with("digits", 9.0))
    publish(tmp_path, state)
    assert read_live(tmp_path, is_alive) == [state]
    # Published again (an update), it is still one file.
    publish(tmp_path, a_state("cvp#Pool#a1", 101, busy=3))
    assert [state.busy for state in read_live(tmp_path, is_alive)] == [3]
    assert len(list(tmp_path.iterdir())) == 1


def test_the_file_is_json_readable_by_its_owner_only_and_no_temporary_stays(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "inference"  # created on first publish
    state = a_state("cvp#Pool#a1", 101, models=(loaded("digits"),))
    publish(directory, state)
    (path,) = directory.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == json.loads(json.dumps(state.as_dict()))
    assert ReplicaState.from_dict(json.loads(path.read_text())) == state


def test_a_dead_replicas_file_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    publish(tmp_path, a_state("cvp#Pool#live", 101))
    publish(tmp_path, a_state("cvp#Pool#dead", 999))
    assert [state.replica for state in read_live(tmp_path, is_alive)] == ["cvp#Pool#live"]
    assert not state_file(tmp_path, "cvp#Pool#dead").exists()
    assert state_file(tmp_path, "cvp#Pool#live").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",  # created, nothing written yet
        b'{"replica": "cvp#Pool#x", "pid": 10',  # cut off half-way
        b"\x00\xff garbage",
        b"[1, 2, 3]",  # JSON, not an object
        b'{"replica": "cvp#Pool#x", "pid": 102}',  # fields missing
    ],
)
def test_an_unreadable_file_is_skipped_and_left_alone(tmp_path: Path, content: bytes) -> None:
    good = a_state("cvp#Pool#good", 101)
    publish(tmp_path, good)
    bad = tmp_path / "broken-0123.json"
    bad.write_bytes(content)
    assert read_live(tmp_path, is_alive) == [good]
    assert bad.exists()


def test_a_state_with_stats_of_another_shape_is_skipped(tmp_path: Path) -> None:
    data = a_state("cvp#Pool#odd", 101).as_dict()
    data["stats"]["latency_ms"]["total"]["buckets_ms"] = [1, 10, 100]
    (tmp_path / "odd.json").write_text(json.dumps(data))
    assert read_live(tmp_path, is_alive) == []


def test_a_temporary_file_being_written_is_not_read(tmp_path: Path) -> None:
    data = a_state("cvp#Pool#a1", 101).as_dict()
    (tmp_path / ".cvp_Pool_a1.tmp123.json").write_text(json.dumps(data))
    assert read_live(tmp_path, is_alive) == []


def test_no_folder_yet_means_no_replicas(tmp_path: Path) -> None:
    assert read_live(tmp_path / "inference", is_alive) == []


def test_remove_deletes_one_replicas_file_and_tolerates_a_missing_one(tmp_path: Path) -> None:
    publish(tmp_path, a_state("cvp#Pool#a1", 101))
    publish(tmp_path, a_state("cvp#Pool#a2", 102))
    remove(tmp_path, "cvp#Pool#a1")
    remove(tmp_path, "cvp#Pool#never-published")
    assert [state.replica for state in read_live(tmp_path, is_alive)] == ["cvp#Pool#a2"]


def test_replica_ids_become_safe_distinct_file_names(tmp_path: Path) -> None:
    ids = ["app/Pool:1", "app:Pool/1", "app_Pool_1", "../../etc/passwd", "..", "x" * 400]
    paths = [state_file(tmp_path, replica) for replica in ids]
    assert len(set(paths)) == len(ids)
    for path in paths:
        assert path.parent == tmp_path
        assert not path.name.startswith(".")
        assert len(path.name) < 255
        assert set(path.stem) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
        )
    for pid, replica in enumerate(ids[:3], start=101):
        publish(tmp_path, a_state(replica, pid))
    assert sorted(state.replica for state in read_live(tmp_path, is_alive)) == sorted(ids[:3])


def test_pool_summary_adds_up_two_replicas() -> None:
    first = a_state(
        "cvp#Pool#a1",
        101,
        busy=2,
        queued=3,
        models=(loaded("digits"), loaded("resnet")),
        stats=stats_with("digits", 9.0, errors=1),
    )
    second = a_state(
        "cvp#Pool#a2",
        102,
        busy=5,
        queued=0,
        models=(loaded("digits"),),
        stats=stats_with("yolo", 30.0),
    )
    summary = pool_summary([first, second])
    assert summary["replicas"] == 2
    assert (summary["workers"], summary["busy"], summary["free"]) == (10, 7, 3)
    assert (summary["queued"], summary["queue_max"]) == (3, 1000)
    assert summary["models_loaded"] == ["digits", "resnet"]
    assert [brief["replica"] for brief in summary["by_replica"]] == ["cvp#Pool#a1", "cvp#Pool#a2"]
    assert summary["by_replica"][0]["models"][1] == {
        "model_id": "resnet",
        "engine": "onnxruntime_cpu",
        "loaded_at": "2025-03-01T12:00:05.000+00:00",
        "last_used_at": "2025-03-01T12:00:30.000+00:00",
        "load_seconds": 0.42,
    }
    assert summary["by_replica"][1]["busy"] == 5 and summary["by_replica"][1]["pid"] == 102
    stats = summary["stats"]
    assert stats == merge_snapshots([first.stats, second.stats])
    assert stats["requests"] == 3 and stats["succeeded"] == 2 and stats["images"] == 4
    assert sorted(stats["models"]) == ["digits", "yolo"]
    json.dumps(summary)  # JSON-ready as it is


def test_an_empty_pool_summary_is_zeros() -> None:
    summary = pool_summary([])
    assert summary["replicas"] == 0 and summary["free"] == 0 and summary["models_loaded"] == []
    assert summary["stats"]["requests"] == 0


def test_pid_alive_tells_a_running_process_from_a_finished_one() -> None:
    assert pid_alive(os.getpid())
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    # A pid just freed is very unlikely to be reused within this test.
    assert not pid_alive(int(finished.stdout))
    assert not pid_alive(0)  # kill(0, 0) would signal our own process group
    assert not pid_alive(-1)


def test_pid_alive_counts_a_process_it_may_not_signal_as_alive() -> None:
    # pid 1 (init) belongs to root: kill(1, 0) by another user raises PermissionError, which
    # means it exists. Run as root, the check runs in a child that gives up root after importing.
    drop_root = "os.setgid(65534); os.setuid(65534)" if os.geteuid() == 0 else "pass"
    probe = (
        "import os\n"
        "from cvplatform.inference.replica_state import pid_alive\n"
        f"{drop_root}\n"
        "try:\n    os.kill(1, 0)\nexcept PermissionError:\n    print('refused', pid_alive(1))"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert child.stdout.strip() == "refused True"
