"""The dataset jobs on the kernel: validation, preprocessing, and registering the samples.

Validation and preprocessing spread their files over the CPUs through the reporter's fan-out
(one CPU task per chunk in the platform); the work itself is in :mod:`actors.datasets`.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

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
from actors.jobs.registry import Job, Outcome
from actors.jobs.reporter import JobReporter
from cvplatform.archives import ExtractLimits, safe_extract
from cvplatform.config import Settings
from cvplatform.errors import CvpError, InvalidInput
from store import queries
from store.artifacts import sha256_of
from store.records import DatasetRecord

Item = TypeVar("Item")


def validation_job(dataset_id: str) -> Job:
    return Job(kind="validation", subject_id=dataset_id, name=f"validate-dataset-{dataset_id[:8]}")


def preprocessing_job(preprocessing_id: str) -> Job:
    return Job(
        kind="preprocessing",
        subject_id=preprocessing_id,
        name=f"preprocess-{preprocessing_id[:8]}",
    )


def chunked(items: list[Item], key: Callable[[Item], Hashable], parts: int) -> list[list[Item]]:
    """Split items into at most ``parts`` lists, never separating items with the same key (the
    frames of one video are decoded by one task, in one pass)."""
    groups: dict[Hashable, list[Item]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    chunks: list[list[Item]] = [[] for _ in range(max(1, min(parts, len(groups))))]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(chunks, key=len).extend(group)
    return [chunk for chunk in chunks if chunk]


def _chunks_for(reporter: JobReporter) -> int:
    # Two chunks per CPU: a slow chunk does not leave a CPU idle at the end.
    return 2 * reporter.fan_out.workers()


# --- validation ---------------------------------------------------------------------------------


def _check_slice(
    root: str, candidates: list[Candidate]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    return check_candidates(Path(root), candidates)


def _discover(settings: Settings, dataset: DatasetRecord, folder: Path) -> tuple[Path, Discovery]:
    metadata = folder / METADATA_TABLE
    if (folder / UPLOAD_TABLE).exists():
        if settings.import_dir is None:
            raise InvalidInput("a CSV-only dataset needs CVP_IMPORT_DIR configured by an admin")
        return settings.import_dir, discover_import(
            settings.import_dir, folder / UPLOAD_TABLE, dataset.task_type
        )
    files = folder / "files"
    if not files.exists():
        limits = ExtractLimits(settings.max_extract_bytes, settings.max_extract_ratio)
        safe_extract(folder / UPLOAD_ARCHIVE, files, limits)
    (folder / UPLOAD_ARCHIVE).unlink(missing_ok=True)  # its sha256 and size stay on the row
    root = files_root(files)
    prefix = "" if root == files else root.relative_to(files).as_posix()
    table = metadata if metadata.exists() else None
    return root, discover(root, dataset.task_type, table, prefix)


def run_validation(job: Job, reporter: JobReporter) -> Outcome:
    """Unpack, recognize, check every sample in parallel; the manifest is written as an artifact."""
    settings = reporter.settings
    dataset = queries.dataset_by_id(reporter.reader, job.subject_id)
    if dataset is None:
        return Outcome("skipped", "the dataset was deleted before its validation started")
    reporter.ops.set_dataset_status(dataset_id=job.subject_id, status="validating")
    folder = settings.artifacts_dir / dataset.files_path
    try:
        root, discovery = _discover(settings, dataset, folder)
        slices = chunked(discovery.candidates, lambda c: c.file, _chunks_for(reporter))
        entries, rejected = [], list(discovery.rejected)
        for found, refused in reporter.fan_out.map(
            _check_slice, [(str(root), part) for part in slices]
        ):
            entries.extend(found)
            rejected.extend(refused)
        names = discovery.class_names if discovery.layout == "yolo_images" else None
        summary = summarize(entries, rejected, discovery.layout, names)
    except CvpError as error:  # the upload itself is at fault
        return Outcome("invalid", error.message)
    lines = "".join(json.dumps(entry) + "\n" for entry in entries)
    (folder / MANIFEST).unlink(missing_ok=True)  # a resumed validation writes it anew
    reporter.write_artifact(f"{dataset.files_path}/{MANIFEST}", [lines.encode()])
    summary["details"]["files_root"] = str(root)
    return Outcome("ready", result=summary)


def end_validation(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    reporter.log_end(outcome)
    if outcome.status == "ready":
        reporter.ops.finish_validation(dataset_id=job.subject_id, outcome=dict(outcome.result))
        return
    reporter.ops.set_dataset_status(
        dataset_id=job.subject_id,
        status=outcome.status,
        reason=outcome.reason,
    )


# --- preprocessing ----------------------------------------------------------------------------


def _process_slice(root: str, entries: list[dict[str, Any]], config_json: str, output: str) -> int:
    return process_chunk(
        Path(root), entries, PreprocessConfig.model_validate_json(config_json), Path(output)
    )


def load_manifest(settings: Settings, dataset: DatasetRecord) -> list[dict[str, Any]]:
    manifest = settings.artifacts_dir / dataset.files_path / MANIFEST
    return [json.loads(line) for line in manifest.read_text().splitlines() if line]


def run_preprocessing(job: Job, reporter: JobReporter) -> Outcome:
    """Split the dataset (seeded, stratified) and resize it into chunks, in parallel."""
    settings = reporter.settings
    record = queries.preprocessing_by_id(reporter.reader, job.subject_id)
    dataset = None if record is None else queries.dataset_by_id(reporter.reader, record.dataset_id)
    if record is None or dataset is None:
        return Outcome("skipped", "the dataset was deleted before its preprocessing started")
    started = time.perf_counter()
    output = settings.artifacts_dir / record.output_path
    try:
        config = PreprocessConfig.model_validate(record.config)
        entries = select_frames(load_manifest(settings, dataset), config.frame_rate)
        assignment = stratified_split(
            [entry["id"] for entry in entries],
            [stratum(entry) for entry in entries],
            config.split,
            config.seed,
        )
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        slices = chunked(
            entries,
            lambda entry: entry["file"] if entry["frame"] is not None else entry["id"],
            _chunks_for(reporter),
        )
        root = dataset.details["files_root"]
        reporter.fan_out.map(
            _process_slice,
            [
                (root, part, config.model_dump_json(), str(output / f"chunk_{index:04d}.npz"))
                for index, part in enumerate(slices)
            ],
        )
        (output / "split.json").write_text(json.dumps(assignment, sort_keys=True))
        (output / "config.json").write_text(config.model_dump_json())
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)  # never a half-written cache entry
        raise
    counts = {split: sum(1 for value in assignment.values() if value == split) for split in SPLITS}
    seconds = round(time.perf_counter() - started, 3)
    return Outcome("ready", result={"split_counts": counts, "seconds": seconds})


def end_preprocessing(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    reporter.log_end(outcome)
    if outcome.status == "ready":
        reporter.ops.finish_preprocessing(preprocessing_id=job.subject_id, **outcome.result)
        return
    reason = outcome.reason or outcome.status
    reporter.ops.fail_preprocessing(preprocessing_id=job.subject_id, reason=reason)


# --- samples ----------------------------------------------------------------------------------


def register_samples(job: Job, reporter: JobReporter) -> Outcome:
    """Build and register the configured sample datasets not registered yet; validate them."""
    from actors.datasets.samples import SAMPLES, build_sample

    settings = reporter.settings
    created = []
    for key in settings.sample_names:
        if reporter.reader.execute("SELECT 1 FROM datasets WHERE sample = ?", [key]).fetchone():
            continue
        sample = SAMPLES[key]
        dataset_id = uuid.uuid4().hex
        folder = settings.artifacts_dir / "datasets" / dataset_id
        archive = build_sample(key, folder).rename(folder / UPLOAD_ARCHIVE)
        row = reporter.ops.create_dataset(
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
        reporter.submit(validation_job(dataset_id))
        created.append(dataset_id)
    return Outcome("completed", result={"created": created})
