"""Writes through the store actor against direct sqlite3 inserts, measured in the same run.

Prints JSON: writes/s for direct sqlite3 (the baseline), the StoreWriter in-process, and the store
actor (one write at a time, and many in flight), the ratios to the baseline, and the latency of one
write through the actor (p50, p99).

    .venv/bin/python bench/store_writes.py [--writes 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import ray

from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from store.actor import init_ray_with_store_secret, platform_store_secret, start_store_actor
from store.writer import StoreWriter

ROW = {"action": "bench", "resource": "POST /bench", "result": 200, "detail": "x" * 40}


def direct_sqlite(path: Path, writes: int) -> float:
    """The baseline: the same table, pragmas and one-transaction-per-row, without the platform."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT, request_id TEXT, user_id INTEGER,"
        " username TEXT, action TEXT, resource TEXT, result INTEGER, detail TEXT)"
    )
    started = time.perf_counter()
    for _ in range(writes):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO audit_log (at, action, resource, result, detail) VALUES (?, ?, ?, ?, ?)",
            ["2026-01-01T00:00:00.000+00:00", *ROW.values()],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return writes / elapsed


def writer_in_process(path: Path, writes: int) -> float:
    writer = StoreWriter(path)
    started = time.perf_counter()
    for _ in range(writes):
        writer.append_audit(**ROW)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    writer.close()
    return writes / elapsed


def actor_one_at_a_time(actor: object, writes: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for _ in range(writes):
        sent = time.perf_counter()
        ray.get(actor.call.remote("append_audit", ROW, platform_store_secret()))  # type: ignore[attr-defined]
        latencies.append(time.perf_counter() - sent)
    return writes / (time.perf_counter() - started), latencies


def actor_pipelined(actor: object, writes: int) -> float:
    started = time.perf_counter()
    secret = platform_store_secret()
    ray.get([actor.call.remote("append_audit", ROW, secret) for _ in range(writes)])  # type: ignore[attr-defined]
    return writes / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    writes = parser.parse_args().writes
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = direct_sqlite(root / "baseline.db", writes)
        in_process = writer_in_process(root / "writer.db", writes)
        init_ray_with_store_secret(
            address="local", namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False
        )
        try:
            actor = start_store_actor(Settings(data_dir=root / "platform"))
            actor_one_at_a_time(actor, 100)  # warm-up
            sequential, latencies = actor_one_at_a_time(actor, writes)
            pipelined = actor_pipelined(actor, writes)
        finally:
            ray.shutdown()
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        json.dumps(
            {
                "benchmark": "store_writes",
                "machine": f"{platform.machine()}, {platform.python_version()}",
                "writes": writes,
                "direct_sqlite_writes_per_s": round(baseline),
                "store_writer_in_process_writes_per_s": round(in_process),
                "store_actor_sequential_writes_per_s": round(sequential),
                "store_actor_pipelined_writes_per_s": round(pipelined),
                "ratio_actor_sequential_to_direct": round(sequential / baseline, 3),
                "ratio_actor_pipelined_to_direct": round(pipelined / baseline, 3),
                "actor_write_latency_p50_ms": round(quantiles[49] * 1000, 3),
                "actor_write_latency_p99_ms": round(quantiles[98] * 1000, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
