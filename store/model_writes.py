"""Writes for models: a model row with its files (artifacts), its status, its deletion."""

from __future__ import annotations

from typing import Any, ClassVar

import sqlite_utils

from cvplatform.errors import Conflict, ResourceInUse
from store import queries
from store.records import ModelRecord, encode_json
from store.writer_base import WriterBase

_MODEL_COLUMNS = (
    "id",
    "name",
    "description",
    "framework",
    "source_format",
    "task_type",
    "architecture",
    "num_classes",
    "input_shape",
    "preset",
    "weights_origin",
    "source_filename",
    "parent_model_id",
    "created_by",
)


_DEFAULTS = {"description": ""}


class ModelWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {"create_model", "set_model_status", "finish_conversion", "delete_model"}
    )

    def _insert_artifact(self, db: sqlite_utils.Database, artifact: dict[str, Any]) -> int:
        cursor = db.execute(
            "INSERT INTO artifacts (path, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?)",
            [artifact["path"], artifact["sha256"], artifact["size_bytes"], self._now()],
        )
        return int(cursor.lastrowid or 0)

    def _model(self, model_id: str) -> ModelRecord:
        return queries.required(queries.model_by_id, self._db, model_id, "model")

    def create_model(self, model: dict[str, Any], source: dict[str, Any]) -> ModelRecord | None:
        """Record an uploaded (or preset) model and its source file, status ``uploaded``.

        Args:
            model: the columns of ``models`` that describe it (id, name, framework...).
            source: the source file as stored: ``path`` (under artifacts), ``sha256``,
                ``size_bytes``.

        Returns:
            the model, or None for a preset that is registered already (presets are created
            once, whoever asks first).
        """
        now = self._now()
        with self._transaction() as db:
            preset = model.get("preset")
            if preset and db.execute("SELECT 1 FROM models WHERE preset = ?", [preset]).fetchone():
                return None
            artifact_id = self._insert_artifact(db, source)
            values = [model.get(column, _DEFAULTS.get(column)) for column in _MODEL_COLUMNS]
            db.execute(
                f"INSERT INTO models ({', '.join(_MODEL_COLUMNS)}, details, status,"  # noqa: S608
                " source_artifact_id, created_at, updated_at)"
                f" VALUES ({', '.join('?' * len(_MODEL_COLUMNS))}, ?, 'uploaded', ?, ?, ?)",
                [*values, encode_json(model.get("details", {})), artifact_id, now, now],
            )
        return self._model(model["id"])

    def set_model_status(
        self,
        model_id: str,
        status: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Move a model along ``uploaded → converting → ready | invalid | failed``.

        ``details`` are merged into the model's details (the conversion's figures, say).
        """
        current = self._model(model_id)
        merged = {**current.details, **(details or {})}
        with self._transaction() as db:
            db.execute(
                "UPDATE models SET status = ?, status_reason = ?, details = ?, updated_at = ?"
                " WHERE id = ?",
                [status, reason, encode_json(merged), self._now(), model_id],
            )
        return self._model(model_id)

    def finish_conversion(
        self, model_id: str, onnx: dict[str, Any] | None, details: dict[str, Any]
    ) -> ModelRecord:
        """The model is ready: record its ONNX file (None: the source is the ONNX file)."""
        current = self._model(model_id)
        merged = {**current.details, **details}
        # A shape the conversion assumed (none was given) becomes the model's; a given one stays.
        assumed_shape = details.get("input_shape")
        with self._transaction() as db:
            onnx_id = self._insert_artifact(db, onnx) if onnx else current.source.artifact_id
            db.execute(
                "UPDATE models SET status = 'ready', status_reason = NULL, onnx_artifact_id = ?,"
                " details = ?, num_classes = COALESCE(num_classes, ?),"
                " input_shape = COALESCE(input_shape, ?), updated_at = ?"
                " WHERE id = ?",
                [
                    onnx_id,
                    encode_json(merged),
                    details.get("num_classes"),
                    None if assumed_shape is None else encode_json(assumed_shape),
                    self._now(),
                    model_id,
                ],
            )
        return self._model(model_id)

    def delete_model(self, model_id: str) -> list[str]:
        """Delete a model's row and its artifact rows; returns the files for the caller to remove.

        Raises:
            Conflict: the model is a preset.
            ResourceInUse: the model is being converted (later: a job uses it).
        """
        model = self._model(model_id)
        if model.preset:
            raise Conflict(f"{model.name} is a preset model; presets cannot be deleted")
        if model.status in ("uploaded", "converting"):
            raise ResourceInUse(
                f"model {model_id} is being converted; delete it when its status is final"
            )
        if queries.active_jobs_using(self._db, "model_id", model_id):
            raise ResourceInUse(f"model {model_id} is used by a queued or running job")
        paths = [model.source.path]
        artifact_ids = [model.source.artifact_id]
        if model.onnx and model.onnx.artifact_id not in artifact_ids:
            paths.append(model.onnx.path)
            artifact_ids.append(model.onnx.artifact_id)
        with self._transaction() as db:
            db.execute("DELETE FROM models WHERE id = ?", [model_id])
            db.execute(
                f"DELETE FROM artifacts WHERE id IN ({', '.join('?' * len(artifact_ids))})",  # noqa: S608
                artifact_ids,
            )
        return paths
