"""Upload throughput against a copy that fsyncs like the upload does, measured in the same run.

Starts the management API (the real app on uvicorn with the platform's options, over a real
``StoreWriter`` on a temporary SQLite file; no Ray) in its own process, then, per round and on the
same file: a chunked copy with one fsync at the end (the baseline), the SDK's resumable upload
(tus ``PATCH`` requests, then the JSON create), and the multipart route as curl uses it. Prints
JSON: MB/s of each (the median round), the ratios to the fsynced copy, and the API process's peak
memory growth during each upload.

    .venv/bin/python bench/upload.py [--mb 256] [--rounds 3] [--chunk-mb 64] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import free_port, wait_for

ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a throwaway platform)
MIB = 1024 * 1024
COPY_BLOCK = 8 * MIB


def serve(port: int, data_dir: Path, max_bytes: int) -> None:
    """The API server: the platform's app and uvicorn options, a real store, no Ray."""
    from cvplatform.config import Settings
    from tests.api_harness import serve_over_http

    settings = Settings(
        data_dir=data_dir,
        presets="",
        samples="",
        bcrypt_rounds=4,
        max_model_bytes=max_bytes,
        max_dataset_bytes=max_bytes,
    )
    serve_over_http(settings, port, ADMIN_PASSWORD)


def fsynced_copy(source: Path, target: Path) -> None:
    """What an upload must do at least: read, write, fsync once at the end."""
    with source.open("rb") as reader, target.open("wb") as writer:
        while block := reader.read(COPY_BLOCK):
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())


def kernel_copy(source: Path, target: Path) -> None:
    """``shutil.copyfile`` (the kernel copies, no bytes through Python) with one fsync: the
    baseline of ``bench/conversion.py``, against which the issue measured 0.27."""
    shutil.copyfile(source, target)
    with target.open("rb+") as copied:
        os.fsync(copied.fileno())


class PeakRss:
    """The API process's resident memory, sampled every 20 ms while a block runs."""

    def __init__(self, process: psutil.Process) -> None:
        self._process = process

    @contextmanager
    def growth(self, into: dict[str, float]) -> Iterator[None]:
        before = peak = self._process.memory_info().rss
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, self._process.memory_info().rss)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            done.set()
            sampler.join()
            into["api_rss_growth_mb"] = round((peak - before) / MIB, 1)


def timed(megabytes: float, rss: PeakRss | None, call: Callable[[], Any]) -> dict[str, float]:
    figures: dict[str, float] = {}
    if rss is None:
        started = time.perf_counter()
        call()
    else:
        with rss.growth(figures):
            started = time.perf_counter()
            call()
    seconds = time.perf_counter() - started
    figures["seconds"] = round(seconds, 3)
    figures["mb_per_s"] = round(megabytes / seconds, 1)
    return figures


def multipart_upload(api_url: str, api_key: str, payload: Path) -> str:
    """``curl -F file=@payload.onnx ...``: the file streamed in a multipart body."""
    with payload.open("rb") as stream:
        answer = httpx.post(
            f"{api_url}/api/v1/models",
            headers={"X-API-Key": api_key},
            data={"name": f"multipart-{time.monotonic_ns()}", "task_type": "classification"},
            files={"file": (payload.name, stream)},
            timeout=600,
        )
    answer.raise_for_status()
    model_id: str = answer.json()["id"]
    return model_id


def measure_round(
    sdk: Any, api_url: str, api_key: str, payload: Path, rss: PeakRss, round_number: int
) -> dict[str, dict[str, float]]:
    megabytes = payload.stat().st_size / 1e6
    copy = payload.with_name("copy.onnx")
    measured = {"fsynced_copy": timed(megabytes, None, partial(fsynced_copy, payload, copy))}
    copy.unlink()
    measured["kernel_copy"] = timed(megabytes, None, partial(kernel_copy, payload, copy))
    copy.unlink()
    resumable = partial(
        sdk.upload_model, payload, f"resumable-{round_number}", "classification", progress=False
    )
    measured["resumable"] = timed(megabytes, rss, resumable)
    measured["multipart"] = timed(
        megabytes, rss, partial(multipart_upload, api_url, api_key, payload)
    )
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=256, help="file size in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-mb", type=int, default=64, help="the SDK's bytes per PATCH")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        port, data_dir, max_bytes = options.serve
        serve(int(port), Path(data_dir), int(max_bytes))
        return

    from cvplatform.client import Client
    from cvplatform.client_uploads import UploadOptions

    megabytes = options.mb * MIB / 1e6
    with tempfile.TemporaryDirectory(dir=options.dir) as scratch:
        root = Path(scratch)
        payload = root / "payload.onnx"
        with payload.open("wb") as sink:
            for _ in range(options.mb):
                sink.write(os.urandom(MIB))
        data_dir = root / "data"
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(port),
                str(data_dir),
                str(2 * options.mb * MIB),
            ]
        )
        api_url = f"http://127.0.0.1:{port}"
        rounds: dict[str, list[dict[str, float]]] = {
            "fsynced_copy": [],
            "kernel_copy": [],
            "resumable": [],
            "multipart": [],
        }
        try:
            wait_for(lambda: httpx.get(f"{api_url}/api/v1/health").raise_for_status(), 60, 0.2)
            rss = PeakRss(psutil.Process(server.pid))
            with Client.login(api_url, "admin", ADMIN_PASSWORD) as admin:
                api_key = admin.create_api_key("bench").key
            upload_options = UploadOptions(chunk_bytes=options.chunk_mb * MIB)
            with Client(
                api_url, api_key=api_key, upload_options=upload_options, timeout_s=600
            ) as sdk:
                for round_number in range(options.rounds):
                    measured = measure_round(sdk, api_url, api_key, payload, rss, round_number)
                    for name, figures in measured.items():
                        rounds[name].append(figures)
                    for model_dir in (data_dir / "artifacts" / "models").iterdir():
                        shutil.rmtree(model_dir)  # room on the disk for the next round
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json_report(rounds, options, megabytes))


def json_report(
    rounds: dict[str, list[dict[str, float]]], options: argparse.Namespace, megabytes: float
) -> str:
    import json

    def median_of(name: str, key: str) -> float:
        return round(statistics.median(figures[key] for figures in rounds[name]), 1)

    ratios: dict[str, Any] = {}
    for name in ("resumable", "multipart"):
        for baseline in ("fsynced_copy", "kernel_copy"):
            # Each round's upload against the same round's copy: both saw the same disk and load.
            per_round = [
                upload["mb_per_s"] / copy["mb_per_s"]
                for upload, copy in zip(rounds[name], rounds[baseline], strict=True)
            ]
            ratios[f"{name}_to_{baseline}"] = round(statistics.median(per_round), 3)
            ratios[f"{name}_to_{baseline}_rounds"] = [round(ratio, 3) for ratio in per_round]
    report = {
        "benchmark": "upload",
        "cpus": os.cpu_count(),
        "file_mb": round(megabytes, 1),
        "rounds": options.rounds,
        "sdk_chunk_mb": options.chunk_mb,
        "mb_per_s": {name: median_of(name, "mb_per_s") for name in rounds},
        "ratios": ratios,
        "api_rss_growth_mb_max": {
            name: max(figures["api_rss_growth_mb"] for figures in rounds[name])
            for name in ("resumable", "multipart")
        },
        "rounds_detail": rounds,
    }
    return json.dumps(report, indent=2)


if __name__ == "__main__":
    main()
