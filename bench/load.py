"""Predictions under load on the Serve endpoint, against raw ONNX Runtime on the same model, in
the same run.

Starts a throwaway platform (``cvp up`` in a temporary data directory, only the EfficientNet-B0
preset, no sample datasets), waits until the preset is ``ready``, makes a viewer and an API key
of the viewer's, then:

1. load: ``--users`` concurrent users (aiohttp, one JPEG per request) for ``--seconds``;
2. single user: ``--single`` requests one after the other, one image each;
3. raw: the model's ONNX file in a plain ``onnxruntime.InferenceSession`` (CPU, default threads)
   in this process, once the platform has stopped (nothing else on the cores): samples/s at the
   batch size the pool used (the load's median ``batched_with``) and ``session.run`` p50 at
   batch 1.

Prints one JSON object with the figures, their ratios and the issue's targets. The ratio is of
the 200 answers per second (one image each) to the raw samples per second.

    .venv/bin/python bench/load.py [--users 100] [--seconds 60] [--single 200]
    .venv/bin/python bench/load.py --seconds 5 --users 10 --single 20        # a quick smoke run
    .venv/bin/python bench/load.py --serve-url URL --api-key KEY --model-id ID --onnx FILE
    .venv/bin/python bench/load.py --raw-only --onnx FILE [--batch-size 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from load_client import Payload, Target, drive, load_figures, make_payloads, sequential
from load_platform import console_tail, log, prepare, start_platform, stop_platform

TARGETS = {"throughput_ratio_min": 0.65, "p99_ms_max": 2000, "single_user_extra_ms_max": 8}
DYNAMIC_SIDE = 224  # an ONNX input whose height or width is not fixed is measured at this size


# --- the raw baseline -----------------------------------------------------------------------


def input_shape(session: Any, batch_size: int) -> tuple[int, ...]:
    """The session's first input with the batch size given and any other free size at 224."""
    dims = session.get_inputs()[0].shape
    fixed = [dim if isinstance(dim, int) and dim > 0 else DYNAMIC_SIDE for dim in dims[1:]]
    return (batch_size, *fixed)


def raw_baseline(
    onnx_path: Path, batch_size: int, seconds: float = 10.0, runs: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Plain ONNX Runtime on the CPU: samples/s at ``batch_size`` and batch-1 latency.

    Args:
        onnx_path: the model's ONNX file.
        batch_size: the batch of the throughput loop (the pool's median batch).
        seconds: how long the throughput loop runs (whole batches; at least one).
        runs: ``session.run`` calls at batch 1 whose latencies give the p50.
        seed: of the preprocessed-like float32 input (standard normal, as normalized pixels are).
    """
    import onnxruntime as ort

    # Default session options: ONNX Runtime's own thread count, as a user would open it.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(seed).standard_normal(
        input_shape(session, batch_size), dtype=np.float32
    )
    samples_per_s, elapsed = _samples_per_s(session, batch, seconds)
    latencies_ms = _latencies_ms(session, batch[:1], runs)
    return {
        "batch_size": batch_size,
        "samples_per_s": round(samples_per_s, 2),
        "batch1_p50_ms": round(float(np.percentile(latencies_ms, 50)), 2),
        "input_shape": list(batch.shape[1:]),
        "seconds": round(elapsed, 2),
        "batch1_runs": runs,
    }


def _samples_per_s(session: Any, batch: np.ndarray, seconds: float) -> tuple[float, float]:
    """Whole batches for about ``seconds`` (at least one) after 3 unmeasured ones."""
    feed = {session.get_inputs()[0].name: batch}
    for _ in range(3):
        session.run(None, feed)
    samples, started = 0, time.perf_counter()
    while samples == 0 or time.perf_counter() - started < seconds:
        session.run(None, feed)
        samples += len(batch)
    elapsed = time.perf_counter() - started
    return samples / elapsed, elapsed


def _latencies_ms(session: Any, single: np.ndarray, runs: int) -> list[float]:
    """``runs`` timed calls after 10 unmeasured ones."""
    feed = {session.get_inputs()[0].name: single}
    for _ in range(10):
        session.run(None, feed)
    latencies_ms = []
    for _ in range(runs):
        sent = time.perf_counter()
        session.run(None, feed)
        latencies_ms.append((time.perf_counter() - sent) * 1000)
    return latencies_ms


def pool_batch_size(median_batched_with: float | None) -> int:
    """The batch the raw loop runs at: the pool's median, rounded half up, at least 1."""
    return max(1, int((median_batched_with or 1) + 0.5))


# --- the run --------------------------------------------------------------------------------


def measure_service(
    target: Target, payloads: list[Payload], options: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The load phase, then the single user; their figures."""
    log(f"load: {options.users} users for {options.seconds}s")
    loaded = asyncio.run(
        drive(target, payloads, options.users, options.seconds, warmup=options.warmup)
    )
    log(f"single user: {options.single} requests")
    alone = asyncio.run(sequential(target, payloads, options.single))
    return load_figures(loaded), load_figures(alone)


def report(
    model: str,
    load: dict[str, Any],
    single: dict[str, Any],
    raw: dict[str, Any],
    options: argparse.Namespace,
) -> dict[str, Any]:
    """The printed JSON: the figures, their ratios, and whether each target is met."""
    ratio = load["succeeded_per_s"] / raw["samples_per_s"]
    extra_ms = None if single["p50_ms"] is None else single["p50_ms"] - raw["batch1_p50_ms"]
    engines: dict[str, int] = load["engines"] or single["engines"]
    return {
        "model": model,
        "engine": max(engines.items(), key=lambda item: item[1])[0] if engines else None,
        "users": options.users,
        "seconds": options.seconds,
        "load": load,
        "raw": raw,
        "ratio_throughput": round(ratio, 3),
        "single_user": single,
        "single_user_p50_over_raw_ms": None if extra_ms is None else round(extra_ms, 2),
        "targets": {
            **TARGETS,
            "met": {
                "throughput_ratio": ratio >= TARGETS["throughput_ratio_min"],
                "p99_ms": load["p99_ms"] is not None and load["p99_ms"] < TARGETS["p99_ms_max"],
                "no_errors_but_503": not (
                    load["errors_other_than_503"] or single["errors_other_than_503"]
                ),
                "single_user_extra_ms": extra_ms is not None
                and extra_ms <= TARGETS["single_user_extra_ms_max"],
            },
        },
        "cpu": os.cpu_count(),
    }


def run_throwaway(options: argparse.Namespace, payloads: list[Payload]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cvp-bench-load-") as scratch:
        log("starting a throwaway platform (a first start converts the preset: minutes)")
        platform = start_platform(Path(scratch), options.preset)
        try:
            prepared = prepare(
                platform, options.preset, options.ready_timeout, options.serve_timeout
            )
            model_id = prepared.model["id"]
            target = Target(f"{platform.serve_url}/v1/models/{model_id}/predict", prepared.api_key)
            load, single = measure_service(target, payloads, options)
        except Exception:
            log(f"failed; the end of what `cvp up` printed:\n{console_tail(platform)}")
            raise
        finally:
            log("stopping the platform")
            stop_platform(platform)
        log("raw ONNX Runtime, the platform stopped")
        batch = pool_batch_size(load["median_batched_with"])
        raw = raw_baseline(prepared.onnx_path, batch, options.raw_seconds, options.raw_runs)
    return report(prepared.model["name"], load, single, raw, options)


def describe_external(options: argparse.Namespace) -> str:
    """The model's name (with ``--api-url`` and a key that may read models; else its id), and a
    warm-up where the key may ask for one."""
    if not options.api_url:
        return str(options.model_id)
    headers, model_url = {"X-API-Key": options.api_key}, f"{options.api_url}/api/v1/models"
    httpx.post(f"{model_url}/{options.model_id}/serving", headers=headers, timeout=300)
    answer = httpx.get(f"{model_url}/{options.model_id}", headers=headers)
    return str(answer.json()["name"]) if answer.status_code == 200 else str(options.model_id)


def run_external(options: argparse.Namespace, payloads: list[Payload]) -> dict[str, Any]:
    name = describe_external(options)
    target = Target(
        f"{options.serve_url.rstrip('/')}/v1/models/{options.model_id}/predict", options.api_key
    )
    load, single = measure_service(target, payloads, options)
    log("raw ONNX Runtime (the platform still runs: keep other work off it)")
    batch = pool_batch_size(load["median_batched_with"])
    raw = raw_baseline(options.onnx, batch, options.raw_seconds, options.raw_runs)
    return report(name, load, single, raw, options)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--single", type=int, default=200, help="single-user requests")
    parser.add_argument("--warmup", type=int, default=10, help="unrecorded requests first")
    parser.add_argument("--payloads", type=int, default=8, help="different JPEGs sent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="efficientnet_b0")
    parser.add_argument("--ready-timeout", type=float, default=1200.0, help="for the preset")
    parser.add_argument("--serve-timeout", type=float, default=300.0, help="for /v1/health")
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument("--raw-runs", type=int, default=200, help="batch-1 session.run calls")
    parser.add_argument("--api-url", help="a running platform's API (the model's name, warm-up)")
    parser.add_argument("--serve-url", help="a running platform's Serve endpoint")
    parser.add_argument("--api-key", help="with --serve-url")
    parser.add_argument("--model-id", help="with --serve-url")
    parser.add_argument("--onnx", type=Path, help="the model's ONNX file (the raw baseline)")
    parser.add_argument("--raw-only", action="store_true", help="measure --onnx alone")
    parser.add_argument("--batch-size", type=int, default=1, help="with --raw-only")
    options = parser.parse_args(argv)
    if options.raw_only and options.onnx is None:
        parser.error("--raw-only needs --onnx")
    if options.serve_url and not (options.api_key and options.model_id and options.onnx):
        parser.error("--serve-url needs --api-key, --model-id and --onnx")
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse(argv)
    if options.raw_only:
        raw = raw_baseline(options.onnx, options.batch_size, options.raw_seconds, options.raw_runs)
        print(json.dumps({"onnx": str(options.onnx), "raw": raw, "cpu": os.cpu_count()}, indent=2))
        return
    payloads = make_payloads(options.payloads, options.seed)
    runner = run_external if options.serve_url else run_throwaway
    print(json.dumps(runner(options, payloads), indent=2))


if __name__ == "__main__":
    main()
