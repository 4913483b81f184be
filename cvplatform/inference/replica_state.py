"""What each replica of the prediction pool holds, as one small JSON file per replica under
``<run_dir>/inference/``, so that any replica's ``/v1/health`` and the management API see the whole
pool without asking Ray (the platform runs on one node, so a file and a pid say it all).

A replica rewrites its file atomically (no reader sees half of one) and removes it when it stops;
a replica that died without doing so leaves a file whose pid is gone, which the next reader
removes. A file that cannot be read (garbage, another version's shape) is skipped, never fatal:
health must answer even when one file is wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvplatform.engines.base import atomic_target
from cvplatform.inference.stats import merge_snapshots, normalized_snapshot

_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
_NAME_PREFIX_LENGTH = 80  # keeps file names far below NAME_MAX (255) whatever Serve calls a replica


@dataclass(frozen=True)
class LoadedModel:
    model_id: str
    engine: str  # the engine's name, e.g. "onnxruntime_cpu"
    loaded_at: str  # ISO-8601 UTC
    last_used_at: str  # ISO-8601 UTC
    load_seconds: float  # measured wall time of the load (session creation included)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadedModel:
        """Raises: ValueError: a field missing or of the wrong type."""
        return cls(
            model_id=_text(data, "model_id"),
            engine=_text(data, "engine"),
            loaded_at=_text(data, "loaded_at"),
            last_used_at=_text(data, "last_used_at"),
            load_seconds=_number(data, "load_seconds"),
        )


@dataclass(frozen=True)
class ReplicaState:
    replica: str  # Serve's replica id (unique); a safe file name is derived from it
    pid: int
    started_at: str  # ISO-8601 UTC (cvplatform.clock.to_iso)
    updated_at: str
    workers: int  # this replica's share of CVP_INFERENCE_WORKERS
    busy: int  # requests being inferred now
    queued: int  # requests waiting for a worker now
    queue_max: int  # this replica's share of CVP_INFERENCE_QUEUE_MAX
    models: tuple[LoadedModel, ...]
    stats: Mapping[str, Any]  # InferenceStats.snapshot()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        fields["models"] = [dataclasses.asdict(model) for model in self.models]
        fields["stats"] = dict(self.stats)
        return fields

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplicaState:
        """Raises: ValueError: a field missing, of the wrong type, or stats not in the shape
        ``InferenceStats.snapshot`` gives."""
        models = data.get("models")
        if not isinstance(models, list) or not all(isinstance(item, dict) for item in models):
            raise ValueError("models must be a list of objects")
        stats = data.get("stats")
        if not isinstance(stats, dict):
            raise ValueError("stats must be an object")
        return cls(
            replica=_text(data, "replica"),
            pid=_count(data, "pid"),
            started_at=_text(data, "started_at"),
            updated_at=_text(data, "updated_at"),
            workers=_count(data, "workers"),
            busy=_count(data, "busy"),
            queued=_count(data, "queued"),
            queue_max=_count(data, "queue_max"),
            models=tuple(LoadedModel.from_dict(item) for item in models),
            stats=normalized_snapshot(stats),
        )


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {value!r}")
    return value


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be an integer >= 0, not {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, not {value!r}")
    return float(value)


def state_file(directory: Path, replica: str) -> Path:
    """The file of one replica: its id with every character but letters, digits, ``_`` and ``-``
    replaced, then a hash of the whole id, so that ids differing only in replaced characters
    (``a/b``, ``a:b``) keep files of their own. Never starts with a dot: those are temporary."""
    readable = _UNSAFE_NAME_CHARACTERS.sub("_", replica)[:_NAME_PREFIX_LENGTH]
    digest = hashlib.sha256(replica.encode()).hexdigest()[:16]
    return directory / f"{readable}-{digest}.json"


def publish(directory: Path, state: ReplicaState) -> None:
    """Write a replica's state file atomically (a temporary file beside it, then ``os.replace``),
    readable by its owner only (0o600)."""
    payload = json.dumps(state.as_dict(), sort_keys=True).encode()
    with atomic_target(state_file(directory, state.replica)) as temporary:
        temporary.write_bytes(payload)
        # mkstemp creates 0o600 already; set here so the promise does not rest on that detail.
        temporary.chmod(0o600)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (``os.kill(pid, 0)``: a signal never sent).

    PermissionError means it exists under another user. A pid <= 0 is no process: ``kill`` would
    address a process group instead.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:  # ProcessLookupError, or a pid the system refuses outright
        return False
    return True


def _read_one(path: Path) -> ReplicaState | None:
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            return None
        return ReplicaState.from_dict(data)
    except (OSError, ValueError):  # json's and from_dict's errors are ValueErrors
        return None


def read_live(directory: Path, is_alive: Callable[[int], bool] = pid_alive) -> list[ReplicaState]:
    """Every live replica's state, sorted by replica id.

    A file whose pid is gone is removed (its replica died without cleaning up). A file that
    cannot be read or is not a replica's state is skipped and left alone: it may be a newer
    version's, and this reader cannot tell.

    Args:
        directory: ``<run_dir>/inference``; missing means no replica yet.
        is_alive: tells whether a pid runs (tests pass their own).
    """
    if not directory.is_dir():
        return []
    states: list[ReplicaState] = []
    for path in directory.glob("*.json"):
        if path.name.startswith("."):  # a write in progress (atomic_target's temporary file)
            continue
        state = _read_one(path)
        if state is None:
            continue
        if is_alive(state.pid):
            states.append(state)
        else:
            path.unlink(missing_ok=True)
    return sorted(states, key=lambda state: state.replica)


def remove(directory: Path, replica: str) -> None:
    """Remove a replica's state file (it is stopping); no error if there is none."""
    state_file(directory, replica).unlink(missing_ok=True)


def pool_summary(states: Sequence[ReplicaState]) -> dict[str, Any]:
    """The pool as a whole, from its replicas' states: sums, the models loaded anywhere, each
    replica in brief, and the merged stats.

    Raises:
        ValueError: a state's stats not in the shape ``InferenceStats.snapshot`` gives (states
            from ``read_live`` were checked already).
    """
    workers = sum(state.workers for state in states)
    busy = sum(state.busy for state in states)
    return {
        "replicas": len(states),
        "workers": workers,
        "busy": busy,
        # Clamped: a replica counts busy and publishes at its own moments; never report < 0 free.
        "free": max(0, workers - busy),
        "queued": sum(state.queued for state in states),
        "queue_max": sum(state.queue_max for state in states),
        "models_loaded": sorted({model.model_id for state in states for model in state.models}),
        "by_replica": [_replica_brief(state) for state in states],
        "stats": merge_snapshots([state.stats for state in states]),
    }


def _replica_brief(state: ReplicaState) -> dict[str, Any]:
    return {
        "replica": state.replica,
        "pid": state.pid,
        "workers": state.workers,
        "busy": state.busy,
        "queued": state.queued,
        "queue_max": state.queue_max,
        "models": [dataclasses.asdict(model) for model in state.models],
        "updated_at": state.updated_at,
    }
