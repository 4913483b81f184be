"""Reads: plain functions over a (read-only) connection. Models, datasets, preprocessing runs,
jobs and users come back as frozen records (:mod:`store.records`); the rest as rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlite_utils

from cvplatform.errors import RecordNotFound
from store.records import (
    BenchmarkResultRecord,
    DatasetRecord,
    JobRecord,
    ModelRecord,
    Page,
    PreprocessingRecord,
    ReportRecord,
    Row,
    UserRecord,
    decode_json,
)

Key = TypeVar("Key", str, int)
Found = TypeVar("Found")

_USER_COLUMNS = "id, username, role, created_at, created_by"
_API_KEY_COLUMNS = "id, user_id, name, prefix, created_at, last_used_at, revoked_at, expires_at"


def required(
    query: Callable[[sqlite_utils.Database, Key], Found | None],
    db: sqlite_utils.Database,
    record_id: Key,
    noun: str,
) -> Found:
    """The record ``query`` finds by id: the one get-or-404 of the platform.

    Raises:
        RecordNotFound: there is none (``no <noun> with id <id>``).
    """
    record = query(db, record_id)
    if record is None:
        raise RecordNotFound(f"no {noun} with id {record_id}")
    return record


def _first(db: sqlite_utils.Database, sql: str, params: list[Any]) -> Row | None:
    return next(iter(db.query(sql, params)), None)


def _page(
    db: sqlite_utils.Database,
    select: str,
    table: str,  # the name (or alias) the filtered columns belong to
    filters: dict[str, str],
    allowed: tuple[str, ...],
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[Row], int]:
    """One page of ``select`` filtered by equality on ``allowed`` columns, and the total count.

    Column names come from ``allowed`` (code), never from the request; values are bound.
    """
    chosen = {name: value for name, value in filters.items() if name in allowed and value}
    where = " AND ".join(f"{table}.{name} = ?" for name in chosen) or "1 = 1"
    params = list(chosen.values())
    count_sql = f"SELECT COUNT(*) FROM ({select} WHERE {where})"  # noqa: S608
    total = db.execute(count_sql, params).fetchone()[0]
    page_sql = f"{select} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
    return list(db.query(page_sql, [*params, limit, offset])), int(total)


def user_by_id(db: sqlite_utils.Database, user_id: int) -> UserRecord | None:
    row = _first(db, f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", [user_id])  # noqa: S608
    return None if row is None else UserRecord.from_row(row)


def user_credentials(db: sqlite_utils.Database, username: str) -> Row | None:
    """The user with their password hash: for checking a login, never for showing."""
    return _first(
        db,
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?",  # noqa: S608
        [username],
    )


def list_users(db: sqlite_utils.Database) -> list[UserRecord]:
    rows = db.query(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id")  # noqa: S608
    return [UserRecord.from_row(row) for row in rows]


def count_users(db: sqlite_utils.Database) -> int:
    return db["users"].count


def api_key_by_id(db: sqlite_utils.Database, key_id: int) -> Row | None:
    return _first(
        db,
        f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE id = ?",  # noqa: S608
        [key_id],
    )


def api_key_for_auth(db: sqlite_utils.Database, prefix: str) -> Row | None:
    """The key with this prefix: its hash, revocation, expiry, and its owner's name and role."""
    return _first(
        db,
        "SELECT k.id, k.user_id, k.key_hash, k.revoked_at, k.expires_at, k.last_used_at,"
        " u.username, u.role FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = ?",
        [prefix],
    )


def list_api_keys(db: sqlite_utils.Database, user_id: int) -> list[Row]:
    return list(
        db.query(
            f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY id",  # noqa: S608
            [user_id],
        )
    )


def session_for_auth(db: sqlite_utils.Database, session_id: str) -> Row | None:
    """The login session and its user's current name and role (a role change applies at once)."""
    return _first(
        db,
        "SELECT s.id, s.user_id, s.expires_at, s.revoked_at, u.username, u.role"
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        [session_id],
    )


def audit_entries(
    db: sqlite_utils.Database, limit: int, offset: int, user_id: int | None = None
) -> list[Row]:
    where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
    return list(
        db.query(
            f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        )
    )


# --- models ---------------------------------------------------------------------------------

_MODEL_SELECT = """
SELECT m.*, s.path AS source_path, s.sha256 AS source_sha256, s.size_bytes AS source_size,
       o.path AS onnx_path, o.sha256 AS onnx_sha256, o.size_bytes AS onnx_size
FROM models m
JOIN artifacts s ON s.id = m.source_artifact_id
LEFT JOIN artifacts o ON o.id = m.onnx_artifact_id
"""


def model_by_id(db: sqlite_utils.Database, model_id: str) -> ModelRecord | None:
    row = _first(db, _MODEL_SELECT + " WHERE m.id = ?", [model_id])
    return None if row is None else ModelRecord.from_row(row)


MODEL_FILTERS = ("task_type", "framework", "status")


def list_models(
    db: sqlite_utils.Database, filters: dict[str, str], limit: int, offset: int
) -> Page[ModelRecord]:
    """One page of models, newest first, and how many match in all."""
    order = "m.created_at DESC, m.id"
    rows, total = _page(db, _MODEL_SELECT, "m", filters, MODEL_FILTERS, order, limit, offset)
    return Page([ModelRecord.from_row(row) for row in rows], total)


def models_awaiting_conversion(db: sqlite_utils.Database) -> list[str]:
    """Models whose conversion had not finished (the platform stopped while it ran)."""
    return [
        row["id"]
        for row in db.query(
            "SELECT id FROM models WHERE status IN ('uploaded', 'converting') ORDER BY created_at"
        )
    ]


# --- datasets --------------------------------------------------------------------------------


def registered_presets(db: sqlite_utils.Database) -> set[str]:
    rows = db.query("SELECT preset FROM models WHERE preset IS NOT NULL")
    return {row["preset"] for row in rows}


def registered_samples(db: sqlite_utils.Database) -> set[str]:
    rows = db.query("SELECT sample FROM datasets WHERE sample IS NOT NULL")
    return {row["sample"] for row in rows}


def dataset_by_id(db: sqlite_utils.Database, dataset_id: str) -> DatasetRecord | None:
    row = _first(db, "SELECT * FROM datasets WHERE id = ?", [dataset_id])
    return None if row is None else DatasetRecord.from_row(row)


DATASET_FILTERS = ("task_type", "status")


def list_datasets(
    db: sqlite_utils.Database, filters: dict[str, str], limit: int, offset: int
) -> Page[DatasetRecord]:
    """One page of datasets, newest first, and how many match in all."""
    select, order = "SELECT * FROM datasets", "datasets.created_at DESC, datasets.id"
    rows, total = _page(db, select, "datasets", filters, DATASET_FILTERS, order, limit, offset)
    return Page([DatasetRecord.from_row(row) for row in rows], total)


def datasets_awaiting_validation(db: sqlite_utils.Database) -> list[str]:
    return [
        row["id"]
        for row in db.query(
            "SELECT id FROM datasets WHERE status IN ('uploaded', 'validating') ORDER BY created_at"
        )
    ]


def preprocessing_by_key(db: sqlite_utils.Database, cache_key: str) -> PreprocessingRecord | None:
    row = _first(db, "SELECT * FROM preprocessings WHERE cache_key = ?", [cache_key])
    return None if row is None else PreprocessingRecord.from_row(row)


def preprocessing_by_id(
    db: sqlite_utils.Database, preprocessing_id: str
) -> PreprocessingRecord | None:
    row = _first(db, "SELECT * FROM preprocessings WHERE id = ?", [preprocessing_id])
    return None if row is None else PreprocessingRecord.from_row(row)


def preprocessings_of(db: sqlite_utils.Database, dataset_id: str) -> list[PreprocessingRecord]:
    return [
        PreprocessingRecord.from_row(row)
        for row in db.query(
            "SELECT * FROM preprocessings WHERE dataset_id = ? ORDER BY created_at", [dataset_id]
        )
    ]


def preprocessings_running(db: sqlite_utils.Database) -> list[PreprocessingRecord]:
    return [
        PreprocessingRecord.from_row(row)
        for row in db.query("SELECT * FROM preprocessings WHERE status = 'running'")
    ]


# --- jobs and alerts -----------------------------------------------------------------------------


def job_by_id(db: sqlite_utils.Database, job_id: str) -> JobRecord | None:
    row = _first(db, "SELECT * FROM jobs WHERE id = ?", [job_id])
    return None if row is None else JobRecord.from_row(row)


JOB_FILTERS = ("kind", "status", "model_id", "dataset_id", "parent_id")


def list_jobs(
    db: sqlite_utils.Database, filters: dict[str, str], limit: int, offset: int
) -> Page[JobRecord]:
    """One page of jobs, newest first, and how many match in all."""
    select, order = "SELECT * FROM jobs", "jobs.created_at DESC, jobs.rowid DESC"
    rows, total = _page(db, select, "jobs", filters, JOB_FILTERS, order, limit, offset)
    return Page([JobRecord.from_row(row) for row in rows], total)


def benchmark_results(db: sqlite_utils.Database, job_id: str) -> list[BenchmarkResultRecord]:
    """A benchmark's results in the order they were measured."""
    rows = db.query("SELECT * FROM benchmark_results WHERE job_id = ? ORDER BY id", [job_id])
    return [BenchmarkResultRecord.from_row(row) for row in rows]


def report_by_id(db: sqlite_utils.Database, report_id: str) -> ReportRecord | None:
    row = _first(db, "SELECT * FROM reports WHERE id = ?", [report_id])
    return None if row is None else ReportRecord.from_row(row)


def report_of_benchmark(db: sqlite_utils.Database, benchmark_id: str) -> ReportRecord | None:
    row = _first(db, "SELECT * FROM reports WHERE benchmark_id = ?", [benchmark_id])
    return None if row is None else ReportRecord.from_row(row)


REPORT_FILTERS = ("model_id", "benchmark_id")


def list_reports(
    db: sqlite_utils.Database, filters: dict[str, str], limit: int, offset: int
) -> Page[ReportRecord]:
    """One page of reports, newest first, and how many match in all."""
    select, order = "SELECT * FROM reports", "reports.created_at DESC, reports.rowid DESC"
    rows, total = _page(db, select, "reports", filters, REPORT_FILTERS, order, limit, offset)
    return Page([ReportRecord.from_row(row) for row in rows], total)


def job_events_after(db: sqlite_utils.Database, job_id: str, after_id: int) -> list[Row]:
    return [
        {**row, "payload": decode_json(row["payload"])}
        for row in db.query(
            "SELECT id, at, kind, payload FROM job_events WHERE job_id = ? AND id > ? ORDER BY id",
            [job_id, after_id],
        )
    ]


def cancel_requested(db: sqlite_utils.Database, job_id: str) -> bool:
    row = _first(db, "SELECT cancel_requested_at FROM jobs WHERE id = ?", [job_id])
    return row is not None and row["cancel_requested_at"] is not None


def active_jobs_using(db: sqlite_utils.Database, column: str, record_id: str) -> int:
    """Queued or running jobs that use a model (``model_id``) or a dataset (``dataset_id``)."""
    if column not in ("model_id", "dataset_id"):  # names a column: never from a request
        raise ValueError(f"jobs are not looked up by {column!r}")
    return int(
        db.execute(
            f"SELECT COUNT(*) FROM jobs WHERE {column} = ? AND status IN ('queued', 'running')",  # noqa: S608
            [record_id],
        ).fetchone()[0]
    )


def queued_count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0])


def list_alerts(db: sqlite_utils.Database, limit: int, offset: int) -> list[Row]:
    return [
        {**row, "details": decode_json(row["details"], {})}
        for row in db.query(
            "SELECT * FROM alerts ORDER BY id DESC LIMIT ? OFFSET ?", [limit, offset]
        )
    ]
