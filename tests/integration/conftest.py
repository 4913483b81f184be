"""A live platform for the integration tests: the real store actor and API actor on real Ray,
a real SQLite file, and real HTTP on a free port. Serve is not started here (tests that need it
start it once per module).

Only what needs Ray belongs here (background work that really runs, actors, restarts, Serve);
routes, validation, RBAC and error shapes are tested in-process in ``tests/api``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.scheduler import start_scheduler
from cvplatform.bootstrap import ensure_first_admin
from cvplatform.client import Client
from cvplatform.config import Settings
from cvplatform.schemas import Role, UserOut
from serve_apps.api.server import start_api_actor
from store.actor import StoreClient, start_store_actor
from tests.helpers import free_port, unique

ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-for-tests"
GPU_QUEUE_MAX = 3
MAX_EXTRACT_BYTES = 32 * 1024 * 1024


@dataclass
class LivePlatform:
    settings: Settings
    store_actor: Any
    api_actor: Any

    @property
    def url(self) -> str:
        return self.settings.api_url

    def login(self, username: str, password: str) -> Client:
        return Client.login(self.url, username, password)

    def admin(self) -> Client:
        return self.login("admin", ADMIN_PASSWORD)

    def new_user(self, role: Role) -> tuple[UserOut, Client]:
        """A fresh user of ``role`` and a client logged in as them."""
        with self.admin() as admin:
            user = admin.create_user(unique(role), USER_PASSWORD, role)
        return user, self.login(user.username, USER_PASSWORD)


@pytest.fixture(scope="session")
def platform(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    data_dir: Path = tmp_path_factory.mktemp("platform")
    (data_dir.parent / "import").mkdir(exist_ok=True)
    settings = Settings(
        data_dir=data_dir,
        port=free_port(),
        admin_password=ADMIN_PASSWORD,
        bcrypt_rounds=4,
        # One session-long platform that every test logs in to from 127.0.0.1: the login
        # buckets are tested in-process, with their own limits.
        login_per_address_per_minute=100_000,
        login_global_per_minute=100_000,
        # Long enough that a test can kill the store actor while a write waits for the lock.
        store_busy_timeout_s=10,
        max_extract_bytes=MAX_EXTRACT_BYTES,
        import_dir=data_dir.parent / "import",
        gpu_queue_max=GPU_QUEUE_MAX,
        presets="",  # registered by the one test that is about them
        samples="",  # likewise
    )
    store_actor = start_store_actor(settings)
    ensure_first_admin(settings, StoreClient(store_actor))
    api_actor = start_api_actor(settings)
    scheduler = start_scheduler(settings)
    yield LivePlatform(settings, store_actor, api_actor)
    ray.kill(scheduler)
    ray.get(api_actor.stop.remote())
    ray.kill(api_actor)
    StoreClient(store_actor).close_store()
    ray.kill(store_actor)


@pytest.fixture
def admin(platform: LivePlatform) -> Iterator[Client]:
    with platform.admin() as client:
        yield client


@pytest.fixture(scope="session")
def trainable(platform: LivePlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A small trainable model (MobileNetV3-small at 32x32, 5 classes) and a tiny 3-class
    dataset, converted and validated once for every module that trains."""
    import torch
    from torchvision import models

    from tests import datasets_kit

    folder = tmp_path_factory.mktemp("trainable")
    torch.manual_seed(0)
    weights = folder / "mnv3.pth"
    torch.save(models.mobilenet_v3_small(weights=None, num_classes=5).state_dict(), weights)
    with platform.admin() as admin:
        model = admin.upload_model(
            weights,
            unique("mnv3"),
            "classification",
            architecture="mobilenet_v3_small",
            input_shape=[3, 32, 32],
        )
        dataset = admin.upload_dataset(
            datasets_kit.class_folders(folder / "tiny.zip", classes=3, per_class=10),
            unique("tiny"),
            "classification",
        )
        assert admin.wait_for_model(model.id, timeout_s=240).status == "ready"
        assert admin.wait_for_dataset(dataset.id).status == "ready"
    return {"model": model.id, "dataset": dataset.id}
