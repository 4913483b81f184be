"""The Ray shells for datasets: validation and preprocessing fan out over CPU tasks (a chunk of
files each), and the sample datasets are registered at start. The work is in :mod:`actors.datasets`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import ray

from actors.datasets.layouts import Candidate, Discovery, discover, discover_import, files_root
from actors.datasets.preprocess import (
    SPLITS,
    PreprocessConfig,
    process_chunk,
    select_frames,
    stratified_split,
    stratum,
)
from actors.datasets.storage import MANIFEST, METADATA_TABLE, UPLOAD_ARCHIVE, UPLOAD_TABLE
from actors.datasets.validate import check_candidates, summarize
from actors.supervision import run_watched, submit_supervised
from cvplatform.archives import ExtractLimits, safe_extract
from cvplatform.config import Settings
from cvplatform.errors import CvpError, InvalidInput
from cvplatform.jsonlog import configure_logging
from store import queries
from store.actor import StoreClient
from store.artifacts import sha256_of, write_artifact
from store.connections import reading

log = logging.getLogger("cvp.datasets")


def _read(settings: Settings, query: Any, record_id: str) -> dict[str, Any] | None:
    with reading(settings.db_path) as reader:
        row: dict[str, Any] | None = query(reader, record_id)
        return row


def chunked(items: list[Any], key: Any, parts: int) -> list[list[Any]]:
    """Split items into at most ``parts`` lists, never separating items with the same key (the
    frames of one video are decoded by one task, in one pass)."""
    groups: dict[Any, list[Any]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    chunks: list[list[Any]] = [[] for _ in range(max(1, min(parts, len(groups))))]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(chunks, key=len).extend(group)
    return [chunk for chunk in chunks if chunk]


def _parallelism() -> int:
    # Two chunks per CPU: a slow chunk does not leave a CPU idle at the end.
    return max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


# --- validation ---------------------------------------------------------------------------------


def _check_slice(
    root: str, candidates: list[Candidate]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    return check_candidates(Path(root), candidates)


def _discover(settings: Settings, dataset: dict[str, Any], folder: Path) -> tuple[Path, Discovery]:
    metadata = folder / METADATA_TABLE
    if (folder / UPLOAD_TABLE).exists():
        if settings.import_dir is None:
            raise InvalidInput("a CSV-only dataset needs CVP_IMPORT_DIR configured by an admin")
        return settings.import_dir, discover_import(
            settings.import_dir, folder / UPLOAD_TABLE, dataset["task_type"]
        )
    files = folder / "files"
    if not files.exists():
        limits = ExtractLimits(settings.max_extract_bytes, settings.max_extract_ratio)
        safe_extract(folder / UPLOAD_ARCHIVE, files, limits)
    (folder / UPLOAD_ARCHIVE).unlink(missing_ok=True)  # its sha256 and size stay on the row
    root = files_root(files)
    prefix = "" if root == files else root.relative_to(files).as_posix()
    table = metadata if metadata.exists() else None
    return root, discover(root, dataset["task_type"], table, prefix)


def run_validation(settings: Settings, dataset_id: str) -> str:
    """Unpack, recognize, check every sample in parallel, record the outcome."""
    configure_logging(settings, f"worker-{os.getpid()}")
    store = StoreClient()
    dataset = _read(settings, queries.dataset_by_id, dataset_id)
    if dataset is None:
        return "deleted"
    store.call_sync("set_dataset_status", dataset_id=dataset_id, status="validating")
    folder = settings.artifacts_dir / dataset["files_path"]
    try:
        root, discovery = _discover(settings, dataset, folder)
        check = ray.remote(num_cpus=1, max_retries=0)(_check_slice)
        slices = chunked(discovery.candidates, lambda c: c.file, _parallelism())
        entries, rejected = [], list(discovery.rejected)
        for found, refused in ray.get([check.remote(str(root), part) for part in slices]):
            entries.extend(found)
            rejected.extend(refused)
        names = discovery.class_names if discovery.layout == "yolo_images" else None
        outcome = summarize(entries, rejected, discovery.layout, names)
    except CvpError as error:
        return _end_validation(store, dataset_id, "invalid", error.message)
    except Exception as error:
        log.error("validation of %s crashed:\n%s", dataset_id, traceback.format_exc())
        return _end_validation(store, dataset_id, "failed", f"validation crashed: {error}")
    lines = "".join(json.dumps(entry) + "\n" for entry in entries)
    (folder / MANIFEST).unlink(missing_ok=True)  # a resumed validation writes it anew
    write_artifact(settings.artifacts_dir, f"{dataset['files_path']}/{MANIFEST}", [lines.encode()])
    outcome["details"]["files_root"] = str(root)
    row = store.call_sync("finish_validation", dataset_id=dataset_id, outcome=outcome)
    return str(row["status"])


def _end_validation(store: StoreClient, dataset_id: str, status: str, reason: str) -> str:
    log.warning("dataset %s is %s: %s", dataset_id, status, reason)
    store.call_sync("set_dataset_status", dataset_id=dataset_id, status=status, reason=reason)
    return status


def supervise_validation(settings: Settings, dataset_id: str) -> str:
    def record_death(reason: str) -> None:
        _end_validation(StoreClient(), dataset_id, "failed", f"validation failed: {reason}")

    return run_watched(
        run_validation,
        (settings, dataset_id),
        f"validate-dataset-{dataset_id[:8]}",
        record_death,
        num_cpus=0,
    )


def submit_validation(settings: Settings, dataset_id: str) -> Any:
    return submit_supervised(
        supervise_validation, (settings, dataset_id), f"supervise-validation-{dataset_id[:8]}"
    )


# --- preprocessing ----------------------------------------------------------------------------


def _process_slice(root: str, entries: list[dict[str, Any]], config_json: str, output: str) -> int:
    return process_chunk(
        Path(root), entries, PreprocessConfig.model_validate_json(config_json), Path(output)
    )


def load_manifest(settings: Settings, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    manifest = settings.artifacts_dir / dataset["files_path"] / MANIFEST
    return [json.loads(line) for line in manifest.read_text().splitlines() if line]


def run_preprocessing(settings: Settings, preprocessing_id: str) -> str:
    configure_logging(settings, f"worker-{os.getpid()}")
    store = StoreClient()
    record = _read(settings, queries.preprocessing_by_id, preprocessing_id)
    dataset = record and _read(settings, queries.dataset_by_id, record["dataset_id"])
    if record is None or dataset is None:
        return "deleted"
    started = time.perf_counter()
    output = settings.artifacts_dir / record["output_path"]
    try:
        config = PreprocessConfig.model_validate(record["config"])
        entries = select_frames(load_manifest(settings, dataset), config.frame_rate)
        assignment = stratified_split(
            [entry["id"] for entry in entries],
            [stratum(entry) for entry in entries],
            config.split,
            config.seed,
        )
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        process = ray.remote(num_cpus=1, max_retries=0)(_process_slice)
        slices = chunked(
            entries,
            lambda entry: entry["file"] if entry["frame"] is not None else entry["id"],
            _parallelism(),
        )
        root = dataset["details"]["files_root"]
        ray.get(
            [
                process.remote(
                    root, part, config.model_dump_json(), str(output / f"chunk_{index:04d}.npz")
                )
                for index, part in enumerate(slices)
            ]
        )
        (output / "split.json").write_text(json.dumps(assignment, sort_keys=True))
        (output / "config.json").write_text(config.model_dump_json())
    except Exception as error:
        log.error("preprocessing %s failed:\n%s", preprocessing_id, traceback.format_exc())
        shutil.rmtree(output, ignore_errors=True)
        message = error.message if isinstance(error, CvpError) else str(error)
        store.call_sync("fail_preprocessing", preprocessing_id=preprocessing_id, reason=message)
        return "failed"
    counts = {split: sum(1 for value in assignment.values() if value == split) for split in SPLITS}
    store.call_sync(
        "finish_preprocessing",
        preprocessing_id=preprocessing_id,
        split_counts=counts,
        seconds=round(time.perf_counter() - started, 3),
    )
    return "ready"


def supervise_preprocessing(settings: Settings, preprocessing_id: str) -> str:
    def record_death(reason: str) -> None:
        StoreClient().call_sync(
            "fail_preprocessing",
            preprocessing_id=preprocessing_id,
            reason=f"preprocessing failed: {reason}",
        )

    return run_watched(
        run_preprocessing,
        (settings, preprocessing_id),
        f"preprocess-{preprocessing_id[:8]}",
        record_death,
        num_cpus=0,
    )


def submit_preprocessing(settings: Settings, preprocessing_id: str) -> Any:
    return submit_supervised(
        supervise_preprocessing,
        (settings, preprocessing_id),
        f"supervise-preprocessing-{preprocessing_id[:8]}",
    )


# --- samples and start-up ----------------------------------------------------------------------


def register_samples(settings: Settings) -> list[str]:
    """Build and register the configured sample datasets not registered yet; validate them."""
    from actors.datasets.samples import SAMPLES, build_sample

    configure_logging(settings, f"worker-{os.getpid()}")
    store = StoreClient()
    created = []
    for key in settings.sample_names:
        with reading(settings.db_path) as reader:
            if reader.execute("SELECT 1 FROM datasets WHERE sample = ?", [key]).fetchone():
                continue
        sample = SAMPLES[key]
        dataset_id = uuid.uuid4().hex
        folder = settings.artifacts_dir / "datasets" / dataset_id
        built = build_sample(key, folder)
        archive = built.rename(folder / UPLOAD_ARCHIVE)
        row = store.call_sync(
            "create_dataset",
            dataset={
                "id": dataset_id,
                "name": sample.name,
                "description": sample.description,
                "task_type": sample.task_type,
                "sample": key,
                "source_filename": sample.filename,
                "source_sha256": sha256_of(archive),
                "source_size_bytes": archive.stat().st_size,
                "files_path": f"datasets/{dataset_id}",
            },
        )
        if row is None:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        submit_validation(settings, dataset_id)
        created.append(dataset_id)
    return created


def start_dataset_work(settings: Settings) -> None:
    """At platform start: resume validations and fail preprocessing runs cut short by a stop,
    then register the sample datasets."""
    with reading(settings.db_path) as reader:
        pending = queries.datasets_awaiting_validation(reader)
        interrupted = queries.preprocessings_running(reader)
    for dataset_id in pending:
        submit_validation(settings, dataset_id)
    store = StoreClient()
    for record in interrupted:
        store.call_sync(
            "fail_preprocessing",
            preprocessing_id=record["id"],
            reason="interrupted: the platform stopped; ask again",
        )
    if settings.sample_names:
        ray.remote(num_cpus=1, max_retries=0)(register_samples).options(
            name="register-samples"
        ).remote(settings)
