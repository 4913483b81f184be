"""Training through the platform against the same model, data and hyperparameters in a plain
PyTorch loop, in the same run.

Prints JSON: training images/s of each (training batches only, validation excluded) and their
ratio (target at least 0.9), and the time from submission to the first batch (a cold start with
preprocessing, and a warm one from the cache).

    .venv/bin/python bench/training.py [--architecture resnet18] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
BENCH_PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway platform in a temporary folder)
HYPERPARAMETERS = {
    "image_size": [32, 32],
    "batch_size": 64,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "augmentation": {"enabled": False},
    "seed": 0,
}


def plain_loop(architecture: str, epochs: int, scratch: Path) -> dict[str, Any]:
    """The baseline: the digits, preprocessed the same way, in a textbook PyTorch loop."""
    import numpy as np
    import torch
    from digits_kit import prepared_digits
    from torch import nn
    from torchvision import models

    from actors.datasets.preprocess import load_split

    output = prepared_digits(scratch)
    images, labels, _, _ = load_split(output, "train")

    # The same device as the platform picks, with the textbook mixed precision on a GPU.
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    mixed = device.type == "cuda"
    torch.manual_seed(0)
    model = models.get_model(architecture, weights=None, num_classes=10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(enabled=mixed)
    criterion = nn.CrossEntropyLoss()
    seen, seconds = 0, 0.0
    for epoch in range(epochs):
        model.train()
        order = np.random.default_rng([0, epoch]).permutation(len(labels))
        started = time.perf_counter()
        for start in range(0, len(labels), 64):
            chosen = order[start : start + 64]
            batch = torch.from_numpy(images[chosen]).to(device)
            targets = torch.from_numpy(labels[chosen]).to(device)
            with torch.autocast(device.type, enabled=mixed):
                loss = criterion(model(batch).float(), targets)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(chosen)
        if mixed:
            torch.cuda.synchronize()
        seconds += time.perf_counter() - started
    return {
        "images_per_s": seen / seconds,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }


def through_platform(architecture: str, epochs: int, scratch: Path) -> dict[str, Any]:
    import ray
    import torch
    from torchvision import models

    from actors.jobs.runner import execute
    from actors.scheduler import start_scheduler
    from actors.startup import REGISTER_SAMPLES
    from cvplatform import RAY_NAMESPACE
    from cvplatform.bootstrap import ensure_first_admin
    from cvplatform.client import Client
    from cvplatform.config import Settings
    from serve_apps.api.server import start_api_actor
    from store.actor import StoreClient, init_ray_with_store_secret, start_store_actor
    from tests.helpers import free_port

    torch.manual_seed(0)
    torch.save(
        models.get_model(architecture, weights=None, num_classes=10).state_dict(), scratch / "m.pth"
    )
    init_ray_with_store_secret(
        address="local",
        namespace=RAY_NAMESPACE,
        include_dashboard=False,
        log_to_driver=False,
        resources={"gpu_slot": 1},
    )
    # One slot: the job's process gets every core, as the plain loop does.
    settings = Settings(
        data_dir=scratch / "data",
        port=free_port(),
        admin_password=BENCH_PASSWORD,
        bcrypt_rounds=4,
        presets="",
        samples="digits",
        gpu_slots=1,
    )
    try:
        store = start_store_actor(settings)
        ensure_first_admin(settings, StoreClient(store))
        handles = [start_api_actor(settings), start_scheduler(settings)]
        ray.get(ray.remote(execute).remote(settings, REGISTER_SAMPLES))
        with Client.login(settings.api_url, "admin", BENCH_PASSWORD, timeout_s=600) as admin:
            digits = next(d for d in admin.list_datasets().items if d.sample == "digits")
            admin.wait_for_dataset(digits.id, 300)
            model = admin.upload_model(
                scratch / "m.pth", "bench", "classification", architecture=architecture
            )
            admin.wait_for_model(model.id, 300)
            timings = []
            for run in range(2):  # cold (preprocessing), then warm (the cache)
                submitted = time.perf_counter()
                job = admin.start_training(
                    model.id, digits.id, **HYPERPARAMETERS, max_epochs=epochs if run == 0 else 1
                )
                while admin.get_job(job.id).progress.get("step", 0) < 1:
                    time.sleep(0.05)
                timings.append(time.perf_counter() - submitted)
                finished = admin.wait_for_job(job.id, 1800)
                if run == 0:
                    result = finished.result or {}
        del handles
    finally:
        ray.shutdown()
    return {
        "images_per_s": result["images_per_s"],
        "cold_start_s": timings[0],
        "warm_start_s": timings[1],
        "device": result["device"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as plain_scratch:
        baseline = plain_loop(options.architecture, options.epochs, Path(plain_scratch))
    with tempfile.TemporaryDirectory() as platform_scratch:
        platform = through_platform(options.architecture, options.epochs, Path(platform_scratch))
    print(
        json.dumps(
            {
                "benchmark": "training",
                "cpus": os.cpu_count(),
                "model": options.architecture,
                "data": "digits sample, 32x32, 90% train",
                "hyperparameters": HYPERPARAMETERS,
                "epochs": options.epochs,
                "plain_pytorch_images_per_s": round(baseline["images_per_s"], 1),
                "plain_pytorch_threads": baseline["torch_threads"],
                "platform_images_per_s": platform["images_per_s"],
                "platform_device": platform["device"],
                "ratio_platform_to_plain": round(
                    platform["images_per_s"] / baseline["images_per_s"], 3
                ),
                "submission_to_first_batch_cold_s": round(platform["cold_start_s"], 2),
                "submission_to_first_batch_warm_s": round(platform["warm_start_s"], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
