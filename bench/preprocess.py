"""Dataset preprocessing through the platform against a plain single-process PIL loop, in the
same run, on the same images.

Prints JSON: images/s of each and their ratio (the platform spreads chunks over CPU Ray tasks; with
two cores the target is at least 1.5x), the time of a cache hit against the first run, and the peak
memory of the platform's workers and of the plain loop.

    .venv/bin/python bench/preprocess.py [--images 3000] [--size 640x480]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).parents[1]
TARGET = (224, 224)
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway platform in a temporary folder)


def make_dataset(folder: Path, count: int, size: tuple[int, int]) -> Path:
    """JPEG photos of smooth noise in 10 class folders, zipped (stored: JPEG is compressed)."""
    rng = np.random.default_rng(0)
    archive = folder / "bench.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as sink:
        for index in range(count):
            small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
            image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
            sink.writestr(f"bench/class_{index % 10}/{index:05d}.jpg", buffer.getvalue())
    return archive


def plain_loop(archive: str) -> dict[str, float]:
    """The baseline, in this (fresh) process: decode and resize every image, one after another."""
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(archive) as opened:
        opened.extractall(scratch)
        files = sorted(Path(scratch).rglob("*.jpg"))
        started = time.perf_counter()
        arrays = []
        for path in files:
            with Image.open(path) as image:
                resized = image.convert("RGB").resize(TARGET[::-1], Image.Resampling.BILINEAR)
                arrays.append(np.asarray(resized))
        np.stack(arrays)
        seconds = time.perf_counter() - started
    return {
        "images": len(files),
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _ray_workers_rss() -> int:
    total = 0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if cmdline.startswith("ray::") and process.info["memory_info"] is not None:
            total += process.info["memory_info"].rss
    return total


def through_platform(archive: Path) -> dict[str, Any]:
    import ray

    from cvplatform import RAY_NAMESPACE
    from cvplatform.bootstrap import ensure_first_admin
    from cvplatform.client import Client
    from cvplatform.config import Settings
    from serve_apps.api.server import start_api_actor
    from store.actor import StoreClient, init_ray_with_store_secret, start_store_actor
    from tests.helpers import free_port

    with tempfile.TemporaryDirectory() as scratch:
        init_ray_with_store_secret(
            address="local", namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False
        )
        settings = Settings(
            data_dir=Path(scratch) / "data",
            port=free_port(),
            admin_password=BENCH_PASSWORD,
            bcrypt_rounds=4,
            presets="",
            samples="",
        )
        try:
            store = start_store_actor(settings)
            ensure_first_admin(settings, StoreClient(store))
            api_actor = start_api_actor(settings)
            with Client.login(settings.api_url, "admin", BENCH_PASSWORD, timeout_s=600) as admin:
                dataset = admin.wait_for_dataset(
                    admin.upload_dataset(archive, "bench", "classification").id, 900
                )
                before = _ray_workers_rss()
                peak, done = before, threading.Event()

                def sample() -> None:
                    nonlocal peak
                    while not done.is_set():
                        peak = max(peak, _ray_workers_rss())
                        time.sleep(0.1)

                sampler = threading.Thread(target=sample)
                sampler.start()
                started = time.perf_counter()
                run = admin.preprocess(dataset.id, image_size=list(TARGET))
                finished = admin.wait_for_preprocessing(dataset.id, run.id, timeout_s=900)
                first_seconds = time.perf_counter() - started
                done.set()
                sampler.join()
                started = time.perf_counter()
                hit = admin.preprocess(dataset.id, image_size=list(TARGET))
                hit_seconds = time.perf_counter() - started
            del api_actor
        finally:
            ray.shutdown()
    return {
        "images": dataset.num_samples,
        "seconds": first_seconds,
        "seconds_in_task": finished.seconds,
        "cache_hit": hit.cache_hit,
        "cache_hit_seconds": hit_seconds,
        "workers_peak_rss_growth_mb": (peak - before) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--plain-loop", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.plain_loop:
        print(json.dumps(plain_loop(options.plain_loop)))
        return
    width, height = (int(side) for side in options.size.split("x"))
    with tempfile.TemporaryDirectory() as scratch:
        archive = make_dataset(Path(scratch), options.images, (width, height))
        baseline = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--plain-loop", str(archive)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        platform = through_platform(archive)
    plain_rate = baseline["images"] / baseline["seconds"]
    platform_rate = platform["images"] / platform["seconds"]
    print(
        json.dumps(
            {
                "benchmark": "preprocess",
                "cpus": os.cpu_count(),
                "images": platform["images"],
                "image_size": f"{width}x{height} JPEG -> {TARGET[1]}x{TARGET[0]}",
                "plain_pil_loop_images_per_s": round(plain_rate, 1),
                "platform_images_per_s": round(platform_rate, 1),
                "ratio_platform_to_plain": round(platform_rate / plain_rate, 3),
                "platform_seconds_request_to_ready": round(platform["seconds"], 2),
                "platform_seconds_inside_the_task": platform["seconds_in_task"],
                "cache_hit": platform["cache_hit"],
                "cache_hit_seconds": round(platform["cache_hit_seconds"], 4),
                "ratio_cache_hit_to_first_run": round(
                    platform["cache_hit_seconds"] / platform["seconds"], 5
                ),
                "plain_loop_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
                "platform_workers_peak_rss_growth_mb": round(
                    platform["workers_peak_rss_growth_mb"], 1
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
