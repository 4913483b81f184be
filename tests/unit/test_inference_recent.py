"""A ready model's serving record is reused for a short while; nothing else is kept."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from cvplatform.inference.recent import RecentServingInputs
from cvplatform.inference.served import ServingInput
from tests.api_harness import SteppedClock
from tests.unit.test_inference_loaded import record


class Store:
    """The store's answers by model id, counting the reads."""

    def __init__(self, *records: ServingInput) -> None:
        self.records: dict[str, ServingInput | None] = {each.model_id: each for each in records}
        self.reads = 0

    def __call__(self, model_id: str) -> ServingInput | None:
        self.reads += 1
        return self.records.get(model_id)


def test_a_ready_record_is_reused_within_the_window_and_read_again_after() -> None:
    clock, store = SteppedClock(), Store(record("m1"))
    recent = RecentServingInputs(timedelta(seconds=2), clock)
    assert recent.read("m1", store) == record("m1")
    clock.advance(1.9)
    assert recent.read("m1", store) == record("m1") and store.reads == 1
    store.records["m1"] = None  # deleted
    assert recent.read("m1", store) is not None  # still within the window
    clock.advance(0.2)
    assert recent.read("m1", store) is None and store.reads == 2


def test_what_is_not_ready_or_unknown_is_read_every_time() -> None:
    converting = dataclasses.replace(record("m2"), status="converting")
    clock, store = SteppedClock(), Store(converting)
    recent = RecentServingInputs(timedelta(seconds=2), clock)
    assert recent.read("m2", store) == converting
    assert recent.read("unknown", store) is None
    store.records["m2"] = record("m2")  # the conversion ended
    assert recent.read("m2", store) == record("m2")
    assert store.reads == 3


def test_a_clock_that_went_back_or_a_zero_window_keeps_nothing() -> None:
    clock, store = SteppedClock(), Store(record("m1"))
    recent = RecentServingInputs(timedelta(seconds=2), clock)
    recent.read("m1", store)
    clock.advance(-5)
    recent.read("m1", store)
    assert store.reads == 2
    uncached = RecentServingInputs(timedelta(0), clock)
    uncached.read("m1", store)
    uncached.read("m1", store)
    assert store.reads == 4


def test_the_least_recently_read_goes_past_the_bound() -> None:
    clock, store = SteppedClock(), Store(record("a"), record("b"), record("c"))
    recent = RecentServingInputs(timedelta(seconds=60), clock, max_entries=2)
    for model_id in ("a", "b", "a", "c"):  # "b" is the least recently read when "c" comes
        recent.read(model_id, store)
    reads = store.reads
    recent.read("a", store)
    recent.read("c", store)
    assert store.reads == reads
    recent.read("b", store)
    assert store.reads == reads + 1
