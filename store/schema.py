"""Versioned migrations, applied in order at start; ``PRAGMA user_version`` records the last one.

A migration is appended, never edited once it has shipped: a database in the field has run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_V1_ACCOUNTS = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'engineer', 'viewer')),
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE login_failures (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    failures INTEGER NOT NULL,
    last_failed_at TEXT NOT NULL,
    locked_until TEXT
);
-- No foreign key on user_id: the trail outlives the users it names.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    request_id TEXT,
    user_id INTEGER,
    username TEXT,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    result INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
-- Files under <data dir>/artifacts; models, datasets, reports and packages point here.
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
"""

_V2_MODELS = """
CREATE TABLE models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    framework TEXT NOT NULL CHECK (framework IN ('pytorch', 'tensorflow', 'onnx')),
    source_format TEXT NOT NULL,
    task_type TEXT NOT NULL CHECK (task_type IN ('classification', 'detection')),
    status TEXT NOT NULL
        CHECK (status IN ('uploaded', 'converting', 'ready', 'invalid', 'failed')),
    status_reason TEXT,
    architecture TEXT,
    num_classes INTEGER,
    input_shape TEXT,
    preset TEXT UNIQUE,
    weights_origin TEXT NOT NULL,
    source_filename TEXT NOT NULL,
    source_artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    onnx_artifact_id INTEGER REFERENCES artifacts(id),
    details TEXT NOT NULL DEFAULT '{}',
    parent_model_id TEXT REFERENCES models(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX models_task_type ON models(task_type);
CREATE INDEX models_status ON models(status);
CREATE INDEX models_created_at ON models(created_at);
"""

_V3_DATASETS = """
CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    task_type TEXT NOT NULL CHECK (task_type IN ('classification', 'detection')),
    status TEXT NOT NULL
        CHECK (status IN ('uploaded', 'validating', 'ready', 'invalid', 'failed')),
    status_reason TEXT,
    layout TEXT,
    sample TEXT UNIQUE,
    source_filename TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_size_bytes INTEGER NOT NULL,
    files_path TEXT NOT NULL,
    content_hash TEXT,
    num_samples INTEGER,
    num_classes INTEGER,
    class_names TEXT,
    total_bytes INTEGER,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX datasets_task_type ON datasets(task_type);
CREATE INDEX datasets_status ON datasets(status);
CREATE INDEX datasets_created_at ON datasets(created_at);
-- One row per (dataset content, preprocessing config): the cache.
CREATE TABLE preprocessings (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    cache_key TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'ready', 'failed')),
    status_reason TEXT,
    output_path TEXT NOT NULL,
    split_counts TEXT,
    seconds REAL,
    reuses INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    finished_at TEXT
);
CREATE INDEX preprocessings_dataset ON preprocessings(dataset_id);
"""

_V4_JOBS = """
-- One table and one lifecycle for every long-running thing: training now; benchmarks, GA
-- searches and package builds later. No foreign keys to models/datasets: the history outlives them.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('training', 'benchmark', 'ga_search', 'package')),
    name TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    model_id TEXT,
    dataset_id TEXT,
    request TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    device TEXT,
    cancel_requested_at TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX jobs_status_created ON jobs(status, created_at);
CREATE INDEX jobs_model ON jobs(model_id);
CREATE INDEX jobs_dataset ON jobs(dataset_id);
CREATE TABLE job_events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events(job_id, id);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    acknowledged_at TEXT
);
CREATE INDEX alerts_at ON alerts(at);
"""

_V5_SECURITY = """
-- An API key may expire (NULL: never).
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
-- A row may stand for several equal events (repeated failed logins from one address in one
-- minute): how many, and the client address they came from.
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN address TEXT;
"""

_V6_BENCHMARKS = """
-- One row per (benchmark job, engine, batch size): every metric, measured once and kept, so that
-- reports never re-measure. A job's rows go with it.
CREATE TABLE benchmark_results (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    engine TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'unavailable', 'cancelled')),
    metrics TEXT NOT NULL DEFAULT '{}',
    intervals TEXT NOT NULL DEFAULT '{}',
    details TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    recorded_at TEXT NOT NULL,
    UNIQUE (job_id, engine, batch_size)
);
"""

_V7_REPORTS = """
-- A report keeps what it was built from (its input, gathered from the store when its benchmark
-- completed), so every format of both views can be rebuilt from it at any time, byte for byte.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    benchmark_id TEXT NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    input TEXT NOT NULL
);
CREATE INDEX reports_model ON reports(model_id, created_at);
CREATE INDEX reports_created_at ON reports(created_at);
"""

_V8_TRIALS = """
-- A GA search's trials are trainings queued like any other; each names the search that made it.
ALTER TABLE jobs ADD COLUMN parent_id TEXT REFERENCES jobs(id) ON DELETE CASCADE;
CREATE INDEX jobs_parent ON jobs(parent_id);
"""

MIGRATIONS: Sequence[Migration] = (
    Migration(1, "accounts, audit log, artifacts", _V1_ACCOUNTS),
    Migration(2, "models", _V2_MODELS),
    Migration(3, "datasets and their preprocessing cache", _V3_DATASETS),
    Migration(4, "jobs, job events, alerts", _V4_JOBS),
    Migration(5, "API key expiry, audit counts and addresses", _V5_SECURITY),
    Migration(6, "benchmark results", _V6_BENCHMARKS),
    Migration(7, "reports", _V7_REPORTS),
    Migration(8, "GA trials name their search", _V8_TRIALS),
)
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply every migration newer than the database; returns the versions applied.

    Each migration and its version bump commit together, so a crash leaves a database at a
    version it fully has.
    """
    current = schema_version(db)
    if current > LATEST_VERSION:
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this release knows "
            f"({LATEST_VERSION}); upgrade cv-platform"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        # executescript commits whatever is pending first, so the transaction is in the script.
        bump = f"PRAGMA user_version = {migration.version:d};"
        try:
            db.conn.executescript(f"BEGIN IMMEDIATE;\n{migration.sql}\n{bump}\nCOMMIT;")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
