"""Preset conversion cost, and upload throughput against a plain file copy in the same run.

Prints JSON:
- per preset: seconds to build and convert it (export, checker, ONNX Runtime, parity) and the peak
  memory of the process that did it (each preset in a fresh process);
- a 500 MB upload through the management API (the SDK's resumable upload to uvicorn in its Ray
  actor, streamed to disk) in MB/s, a plain file copy of the same file in MB/s, their ratio, and
  the API process's memory growth during the upload. ``bench/upload.py`` compares the upload
  paths (resumable, multipart) without Ray, round by round against a chunked fsynced copy.

    .venv/bin/python bench/conversion.py [--upload-mb 500] [--presets yolov8n,resnet50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).parents[1]
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway platform in a temporary folder)


def convert_preset(key: str) -> dict[str, Any]:
    """In this (fresh) process: build the preset and convert it as the platform does."""
    from actors.models.conversion import ConversionRequest, convert
    from actors.models.presets import PRESETS, preset_weights

    preset = PRESETS[key]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "source.pth"
        source.write_bytes(preset_weights(preset, None).state_dict_bytes)
        result = convert(
            ConversionRequest(
                source,
                "torch_state_dict",
                preset.task_type,
                preset.architecture,
                preset.num_classes,
                list(preset.input_shape),
            ),
            Path(scratch),
        )
    return {
        "preset": key,
        "seconds": round(time.perf_counter() - started, 2),
        "conversion_seconds": result.details["conversion_seconds"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "parity_max_abs_diff": result.details["parity"]["max_abs_diff"],
    }


def _api_process() -> psutil.Process:
    for process in psutil.process_iter(["cmdline"]):
        if "ray::ApiServer" in " ".join(process.info["cmdline"] or []):
            return process
    raise RuntimeError("no ApiServer process found")


def upload_throughput(megabytes: int) -> dict[str, Any]:
    import ray

    from cvplatform import RAY_NAMESPACE
    from cvplatform.bootstrap import ensure_first_admin
    from cvplatform.client import Client
    from cvplatform.config import Settings
    from serve_apps.api.server import start_api_actor
    from store.actor import StoreClient, init_ray_with_store_secret, start_store_actor
    from tests.helpers import free_port

    with tempfile.TemporaryDirectory(dir=ROOT) as scratch:
        root = Path(scratch)
        payload = root / "payload.onnx"
        with payload.open("wb") as sink:
            for _ in range(megabytes):
                sink.write(os.urandom(1024 * 1024))
        started = time.perf_counter()
        shutil.copyfile(payload, root / "copy.onnx")
        copy_mb_s = megabytes / (time.perf_counter() - started)
        (root / "copy.onnx").unlink()
        # The upload fsyncs its file before answering; a copy that does the same, for scale.
        started = time.perf_counter()
        shutil.copyfile(payload, root / "copy.onnx")
        with (root / "copy.onnx").open("rb+") as copied:
            os.fsync(copied.fileno())
        synced_copy_mb_s = megabytes / (time.perf_counter() - started)
        (root / "copy.onnx").unlink()

        init_ray_with_store_secret(
            address="local", namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False
        )
        # Chosen after Ray started, so that none of Ray's own servers has taken the port.
        settings = Settings(
            data_dir=root / "data",
            port=free_port(),
            admin_password=BENCH_PASSWORD,
            bcrypt_rounds=4,
            presets="",
            max_model_bytes=(megabytes + 1) * 1024 * 1024,
        )
        try:
            store = start_store_actor(settings)
            ensure_first_admin(settings, StoreClient(store))
            api_actor = start_api_actor(settings)  # the handle keeps the actor alive
            api = _api_process()
            before = api.memory_info().rss
            peak = before
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, api.memory_info().rss)
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            with Client.login(settings.api_url, "admin", BENCH_PASSWORD, timeout_s=600) as admin:
                started = time.perf_counter()
                admin.upload_model(payload, "bench-upload", "classification")
                upload_seconds = time.perf_counter() - started
            done.set()
            sampler.join()
            del api_actor
        finally:
            ray.shutdown()
    upload_mb_s = megabytes / upload_seconds
    return {
        "file_mb": megabytes,
        "upload_mb_per_s": round(upload_mb_s, 1),
        "plain_copy_mb_per_s": round(copy_mb_s, 1),
        "ratio_upload_to_copy": round(upload_mb_s / copy_mb_s, 3),
        "fsynced_copy_mb_per_s": round(synced_copy_mb_s, 1),
        "ratio_upload_to_fsynced_copy": round(upload_mb_s / synced_copy_mb_s, 3),
        "api_process_memory_growth_mb": round((peak - before) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upload-mb", type=int, default=500)
    parser.add_argument("--presets", default="yolov8n,resnet50,efficientnet_b0")
    parser.add_argument("--convert-preset", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.convert_preset:
        print(json.dumps(convert_preset(options.convert_preset)))
        return
    presets = []
    for key in filter(None, options.presets.split(",")):  # --presets "": the upload only
        child = subprocess.run(
            [sys.executable, __file__, "--convert-preset", key],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": tempfile.gettempdir()},
        )
        presets.append(json.loads(child.stdout.strip().splitlines()[-1]))
    report = {
        "benchmark": "conversion",
        "cpus": os.cpu_count(),
        "presets": presets,
        "upload": upload_throughput(options.upload_mb),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
