"""Writes for datasets: the dataset row, its validation outcome, its preprocessing cache."""

from __future__ import annotations

from typing import Any, ClassVar

from cvplatform.errors import Conflict, ResourceInUse
from store import queries
from store.records import DatasetRecord, PreprocessingClaim, encode_json
from store.writer_base import WriterBase

_DATASET_COLUMNS = (
    "id",
    "name",
    "description",
    "task_type",
    "layout",
    "sample",
    "source_filename",
    "source_sha256",
    "source_size_bytes",
    "files_path",
    "created_by",
)
_DEFAULTS = {"description": ""}


class DatasetWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "create_dataset",
            "set_dataset_status",
            "finish_validation",
            "delete_dataset",
            "start_preprocessing",
            "finish_preprocessing",
            "fail_preprocessing",
        }
    )

    def _dataset(self, dataset_id: str) -> DatasetRecord:
        return queries.required(queries.dataset_by_id, self._db, dataset_id, "dataset")

    def create_dataset(self, dataset: dict[str, Any]) -> DatasetRecord | None:
        """Record an uploaded (or sample) dataset, status ``uploaded``; None for a sample
        registered already."""
        now = self._now()
        with self._transaction() as db:
            sample = dataset.get("sample")
            if (
                sample
                and db.execute("SELECT 1 FROM datasets WHERE sample = ?", [sample]).fetchone()
            ):
                return None
            values = [dataset.get(column, _DEFAULTS.get(column)) for column in _DATASET_COLUMNS]
            db.execute(
                f"INSERT INTO datasets ({', '.join(_DATASET_COLUMNS)}, details, status,"  # noqa: S608
                " created_at, updated_at)"
                f" VALUES ({', '.join('?' * len(_DATASET_COLUMNS))}, ?, 'uploaded', ?, ?)",
                [*values, encode_json(dataset.get("details", {})), now, now],
            )
        return self._dataset(dataset["id"])

    def set_dataset_status(
        self, dataset_id: str, status: str, reason: str | None = None
    ) -> DatasetRecord:
        self._dataset(dataset_id)
        with self._transaction() as db:
            db.execute(
                "UPDATE datasets SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                [status, reason, self._now(), dataset_id],
            )
        return self._dataset(dataset_id)

    def finish_validation(self, dataset_id: str, outcome: dict[str, Any]) -> DatasetRecord:
        """Record what validation found; ``ready`` if any sample is usable, else ``invalid``."""
        self._dataset(dataset_id)
        usable = outcome["num_samples"] > 0
        reason = None if usable else outcome.get("reason", "no usable sample")
        with self._transaction() as db:
            db.execute(
                "UPDATE datasets SET status = ?, status_reason = ?, layout = ?, content_hash = ?,"
                " num_samples = ?, num_classes = ?, class_names = ?, total_bytes = ?,"
                " details = ?, updated_at = ? WHERE id = ?",
                [
                    "ready" if usable else "invalid",
                    reason,
                    outcome["layout"],
                    outcome["content_hash"],
                    outcome["num_samples"],
                    outcome["num_classes"],
                    encode_json(outcome["class_names"]),
                    outcome["total_bytes"],
                    encode_json(outcome["details"]),
                    self._now(),
                    dataset_id,
                ],
            )
        return self._dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> list[str]:
        """Delete the dataset and its preprocessing rows; returns the folders to remove.

        Raises:
            Conflict: the dataset is a sample.
            ResourceInUse: it is being validated or preprocessed (later: a job uses it).
        """
        dataset = self._dataset(dataset_id)
        if dataset.sample:
            raise Conflict(f"{dataset.name} is a sample dataset; samples cannot be deleted")
        if dataset.status in ("uploaded", "validating"):
            raise ResourceInUse(f"dataset {dataset_id} is being validated; try when it is done")
        if queries.active_jobs_using(self._db, "dataset_id", dataset_id):
            raise ResourceInUse(f"dataset {dataset_id} is used by a queued or running job")
        with self._transaction() as db:
            running = db.execute(
                "SELECT COUNT(*) FROM preprocessings WHERE dataset_id = ? AND status = 'running'",
                [dataset_id],
            ).fetchone()[0]
            if running:
                raise ResourceInUse(f"dataset {dataset_id} is being preprocessed")
            outputs = [
                row[0]
                for row in db.execute(
                    "SELECT output_path FROM preprocessings WHERE dataset_id = ?", [dataset_id]
                )
            ]
            db.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])
        return [dataset.files_path, *outputs]

    def start_preprocessing(
        self,
        preprocessing_id: str,
        dataset_id: str,
        cache_key: str,
        config: dict[str, Any],
        output_path: str,
        created_by: int | None,
    ) -> PreprocessingClaim:
        """Claim a cache key; if it is claimed already, count a reuse and return that run.

        The claim's ``cache_hit`` says which happened; a failed attempt is replaced.
        """
        with self._transaction() as db:
            existing = queries.preprocessing_by_key(db, cache_key)
            if existing is not None and existing.status != "failed":
                db.execute(
                    "UPDATE preprocessings SET reuses = reuses + 1 WHERE id = ?", [existing.id]
                )
                reused = queries.required(queries.preprocessing_by_key, db, cache_key, "run")
                return PreprocessingClaim(reused, cache_hit=True)
            if existing is not None:
                db.execute("DELETE FROM preprocessings WHERE id = ?", [existing.id])
            db.execute(
                "INSERT INTO preprocessings (id, dataset_id, cache_key, config, status,"
                " output_path, created_at, created_by) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                [
                    preprocessing_id,
                    dataset_id,
                    cache_key,
                    encode_json(config),
                    output_path,
                    self._now(),
                    created_by,
                ],
            )
            claimed = queries.required(queries.preprocessing_by_key, db, cache_key, "run")
        return PreprocessingClaim(claimed, cache_hit=False)

    def finish_preprocessing(
        self, preprocessing_id: str, split_counts: dict[str, int], seconds: float
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE preprocessings SET status = 'ready', split_counts = ?, seconds = ?,"
                " finished_at = ? WHERE id = ?",
                [encode_json(split_counts), seconds, self._now(), preprocessing_id],
            )

    def fail_preprocessing(self, preprocessing_id: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE preprocessings SET status = 'failed', status_reason = ?, finished_at = ?"
                " WHERE id = ?",
                [reason, self._now(), preprocessing_id],
            )
