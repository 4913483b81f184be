"""The replica's cache of open models in plain asyncio: least recently used closed first and
released, one load for many concurrent requests, a model in use released only when its last user
ends, forgetting, a reconverted model reloaded, and a failed load raised to every waiter.

The models are real ``ServedModel`` objects over a stand-in session that records its release: the
thing under test is the cache, not an engine."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cvplatform.engines.base import EngineFailed, ModelFile, Setup
from cvplatform.inference.loaded import LoadedModels
from cvplatform.inference.preprocessing import IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD, PreprocessSpec
from cvplatform.inference.served import ServedModel, ServingInput

pytestmark = pytest.mark.anyio

GATE_TIMEOUT_S = 5.0  # a test that forgets to open a gate fails instead of hanging


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # what the Serve replica runs on


class StandInSession:
    """A session that answers zeros and records its release."""

    def __init__(self, label: str, released: list[str]) -> None:
        self.setup = Setup("session_creation", 0.0, {})
        self.label = label
        self._released = released

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return [np.zeros((len(batch), 4), np.float32)]

    def release(self) -> None:
        self._released.append(self.label)


class Opener:
    """``open_model`` for the cache: counts its calls, can hold them at a gate and fail them.

    Each opened model's session is labelled ``<model id>#<n>`` (n: the n-th open of that id).
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.released: list[str] = []
        self.gate: threading.Event | None = None
        self.failures_left = 0
        self._lock = threading.Lock()

    def __call__(self, record: ServingInput) -> ServedModel:
        with self._lock:
            self.calls[record.model_id] += 1
            label = f"{record.model_id}#{self.calls[record.model_id]}"
        if self.gate is not None and not self.gate.wait(GATE_TIMEOUT_S):
            raise AssertionError("the test never opened the gate")
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                raise EngineFailed(f"cannot load {label}")
        return served(record, StandInSession(label, self.released))

    def label(self, model: ServedModel) -> str:
        assert isinstance(model.session, StandInSession)
        return model.session.label


def served(record: ServingInput, session: StandInSession) -> ServedModel:
    return ServedModel(
        model_id=record.model_id,
        task_type=record.task_type,
        engine="onnxruntime_cpu",
        engine_reason="a stand-in for the test",
        spec=PreprocessSpec(8, 8, IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD),
        class_names=None,
        session=session,
        fixed_batch=None,
        loaded_at="2025-03-01T12:00:00.000+00:00",
        load_seconds=0.0,
    )


def record(model_id: str, sha256: str = "sha-1") -> ServingInput:
    return ServingInput(
        model_id=model_id,
        name=model_id,
        status="ready",
        task_type="classification",
        onnx=ModelFile(Path(f"/models/{model_id}.onnx"), sha256),
        input_dims=("batch", 3, 8, 8),
        preprocessing=None,
        class_names=None,
        selected_engine=None,
        selected_by=None,
    )


class User:
    """A request that holds a model until the test lets it go."""

    def __init__(self, models: LoadedModels, served_input: ServingInput) -> None:
        self.models = models
        self.release = asyncio.Event()
        self.model: ServedModel | None = None
        self.task = asyncio.create_task(self._use(served_input))

    async def _use(self, served_input: ServingInput) -> ServedModel:
        async with self.models.using(served_input) as model:
            self.model = model
            await self.release.wait()
            return model


async def until(condition: Callable[[], bool], timeout_s: float = GATE_TIMEOUT_S) -> None:
    """Wait (yielding to the loop) until ``condition()`` holds: loads run on threads."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


def held_ids(models: LoadedModels) -> list[str]:
    return [model.model_id for model in models.held()]


async def test_the_least_recently_used_model_is_closed_and_released_first() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    await models.load(record("a"))
    await models.load(record("b"))
    async with models.using(record("a")):  # a is now the most recently used
        pass
    assert held_ids(models) == ["b", "a"]

    await models.load(record("c"))
    assert held_ids(models) == ["a", "c"]
    assert opener.released == ["b#1"]
    assert not models.holds("b") and models.holds("a") and models.holds("c")

    await models.load(record("b"))  # b comes back: a fresh load, and a goes
    assert held_ids(models) == ["c", "b"]
    assert opener.released == ["b#1", "a#1"]
    assert opener.calls == Counter({"a": 1, "b": 2, "c": 1})


async def test_a_held_model_is_served_without_loading_it_again() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    first = await models.load(record("a"))
    async with models.using(record("a")) as again:
        assert again is first
        assert again.last_used_at  # stamped for the pool's view
    assert opener.calls["a"] == 1 and opener.released == []


async def test_concurrent_requests_for_one_model_load_it_once() -> None:
    opener = Opener()
    opener.gate = threading.Event()
    models = LoadedModels(2, opener)
    users = [User(models, record("a")) for _ in range(4)]
    await until(lambda: opener.calls["a"] == 1)
    await asyncio.sleep(0.05)  # give the other requests every chance to start a load of their own
    assert opener.calls["a"] == 1 and all(user.model is None for user in users)

    opener.gate.set()
    await until(lambda: all(user.model is not None for user in users))
    assert len({id(user.model) for user in users}) == 1
    assert opener.calls["a"] == 1
    for user in users:
        user.release.set()
    await asyncio.gather(*(user.task for user in users))
    assert held_ids(models) == ["a"] and opener.released == []


async def test_a_model_in_use_when_evicted_is_released_when_its_last_user_ends() -> None:
    opener = Opener()
    models = LoadedModels(1, opener)
    users = [User(models, record("a")) for _ in range(2)]
    await until(lambda: all(user.model is not None for user in users))

    await models.load(record("b"))  # a is evicted while two requests still run on it
    assert held_ids(models) == ["b"]
    assert opener.released == []
    users[0].release.set()
    await users[0].task
    assert opener.released == []  # one user is left
    users[1].release.set()
    await users[1].task
    assert opener.released == ["a#1"]

    await models.load(record("a"))  # it is loaded afresh, not the released one
    assert opener.calls["a"] == 2 and opener.released == ["a#1", "b#1"]


async def test_forget_closes_a_model_and_says_whether_it_was_open() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    await models.load(record("a"))
    await models.load(record("b"))
    assert models.forget("a") is True
    assert opener.released == ["a#1"] and held_ids(models) == ["b"]
    assert models.forget("a") is False
    assert models.forget("never-loaded") is False
    assert opener.released == ["a#1"]  # nothing released twice


async def test_a_model_forgotten_while_in_use_is_released_when_the_request_ends() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    user = User(models, record("a"))
    await until(lambda: user.model is not None)
    assert models.forget("a") is True
    assert opener.released == [] and not models.holds("a")
    user.release.set()
    assert await user.task is user.model
    assert opener.released == ["a#1"]


async def test_close_all_releases_every_model() -> None:
    opener = Opener()
    models = LoadedModels(3, opener)
    for model_id in ("a", "b", "c"):
        await models.load(record(model_id))
    models.close_all()
    assert held_ids(models) == [] and sorted(opener.released) == ["a#1", "b#1", "c#1"]


async def test_a_model_converted_again_is_reloaded_and_the_old_one_released() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    old = await models.load(record("a", sha256="sha-1"))
    new = await models.load(record("a", sha256="sha-2"))
    assert new is not old
    assert opener.label(new) == "a#2"
    assert opener.released == ["a#1"]
    assert held_ids(models) == ["a"]
    assert await models.load(record("a", sha256="sha-2")) is new  # the same file: no reload
    assert opener.calls["a"] == 2


async def test_a_failed_load_is_raised_to_every_waiter_and_the_next_request_tries_again() -> None:
    opener = Opener()
    opener.gate = threading.Event()
    opener.failures_left = 1
    models = LoadedModels(2, opener)
    users = [User(models, record("a")) for _ in range(3)]
    await until(lambda: opener.calls["a"] == 1)
    await asyncio.sleep(0.05)  # the others join the one load
    opener.gate.set()

    outcomes = await asyncio.gather(*(user.task for user in users), return_exceptions=True)
    assert all(isinstance(outcome, EngineFailed) for outcome in outcomes), outcomes
    assert all("cannot load a#1" in str(outcome) for outcome in outcomes)
    assert opener.calls["a"] == 1
    assert held_ids(models) == [] and opener.released == []

    again = await models.load(record("a"))  # no failure is remembered
    assert opener.label(again) == "a#2" and held_ids(models) == ["a"]


async def cancel_the_loading_request(opener: Opener, models: LoadedModels) -> User:
    """The first request for a model starts its load and is cancelled (its client went away)
    while a second request waits for that load; returns the second."""
    opener.gate = threading.Event()
    loader = User(models, record("a"))
    await until(lambda: opener.calls["a"] == 1)
    waiter = User(models, record("a"))
    await asyncio.sleep(0.05)
    loader.task.cancel()
    await asyncio.gather(loader.task, return_exceptions=True)
    opener.gate.set()
    return waiter


async def test_a_waiter_still_gets_the_model_when_the_loading_request_is_cancelled() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    waiter = await cancel_the_loading_request(opener, models)
    waiter.release.set()
    outcome = (await asyncio.gather(waiter.task, return_exceptions=True))[0]
    assert isinstance(outcome, ServedModel), outcome


async def test_the_model_opened_for_a_cancelled_load_is_held_or_released() -> None:
    opener = Opener()
    models = LoadedModels(2, opener)
    waiter = await cancel_the_loading_request(opener, models)
    waiter.release.set()
    await asyncio.gather(waiter.task, return_exceptions=True)
    await asyncio.sleep(0.1)  # the thread has returned its model by now
    assert "a#1" in opener.released or held_ids(models) == ["a"]


def test_capacity_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="capacity"):
        LoadedModels(0, Opener())
