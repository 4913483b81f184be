"""The benchmark's measurement math: seeded inputs, timing with a fake clock, and statistics
checked against values computed by hand."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from cvplatform.benchmarking import stats
from cvplatform.benchmarking.inputs import seeded_inputs
from cvplatform.benchmarking.measure import time_runs
from cvplatform.benchmarking.stats import Interval, summarize


def clock_at(*seconds: float) -> Callable[[], float]:
    """A clock that returns these times, one per call, and fails if asked once more."""
    times: Iterator[float] = iter(seconds)
    return lambda: next(times)


class ManualClock:
    """Time moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1000.0


# --- inputs -------------------------------------------------------------------------------------


def test_seeded_inputs_are_the_same_bytes_for_the_same_arguments() -> None:
    first = seeded_inputs(7, 4, (3, 8, 8))
    again = seeded_inputs(7, 4, (3, 8, 8))
    assert first.dtype == np.float32
    assert first.shape == (4, 3, 8, 8)
    assert first.tobytes() == again.tobytes()


def test_seeded_inputs_differ_by_seed_and_by_batch_size() -> None:
    base = seeded_inputs(7, 4, (3, 8, 8))
    assert not np.array_equal(base, seeded_inputs(8, 4, (3, 8, 8)))
    # Another batch size is a stream of its own, not a prefix of the same one.
    assert not np.array_equal(base[:2], seeded_inputs(7, 2, (3, 8, 8)))


def test_seeded_inputs_are_standard_normal() -> None:
    values = seeded_inputs(0, 16, (3, 32, 32))
    assert abs(float(values.mean())) < 0.05
    assert abs(float(values.std()) - 1.0) < 0.05


@pytest.mark.parametrize(
    ("seed", "batch_size", "shape"),
    [(0, 0, (3, 8, 8)), (0, 1, (3, 0, 8)), (0, 1, (3, 8)), (-1, 1, (3, 8, 8))],
)
def test_seeded_inputs_refuse_bad_arguments(
    seed: int, batch_size: int, shape: tuple[int, int, int]
) -> None:
    with pytest.raises(ValueError):
        seeded_inputs(seed, batch_size, shape)


# --- measure ------------------------------------------------------------------------------------


def test_cold_warmup_and_measured_runs_are_timed_apart() -> None:
    clock = clock_at(0.0, 0.010, 1.0, 1.003, 2.0, 2.004, 3.0, 3.005, 4.0, 4.006, 5.0, 5.007)
    runs: list[int] = []
    timings = time_runs(lambda: runs.append(1), warmup=2, iterations=3, clock=clock)
    assert len(runs) == 6
    assert timings.cold_ms == pytest.approx(10.0)
    assert timings.warmup_ms == pytest.approx((3.0, 4.0))
    assert timings.samples_ms == pytest.approx((5.0, 6.0, 7.0))
    assert timings.stopped is False


def test_the_window_covers_the_measured_runs_only() -> None:
    events: list[str] = []

    class Window:
        def __enter__(self) -> None:
            events.append("enter")

        def __exit__(self, *exc: object) -> None:
            events.append("exit")

    counter = iter(range(100))
    time_runs(lambda: events.append(f"run{next(counter)}"), warmup=1, iterations=2, window=Window())
    # run0 is the cold run, run1 the warmup: both before the window opens.
    assert events == ["run0", "run1", "enter", "run2", "run3", "exit"]


def test_progress_after_every_measured_run_and_not_timed() -> None:
    clock = ManualClock()
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))
        clock.advance_ms(100.0)  # writing progress is slow; it must not count as latency

    timings = time_runs(
        lambda: clock.advance_ms(2.0), warmup=1, iterations=3, clock=clock, on_progress=on_progress
    )
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert timings.samples_ms == pytest.approx((2.0, 2.0, 2.0))


def test_stopping_mid_window_keeps_what_was_measured() -> None:
    clock = ManualClock()
    runs: list[int] = []
    progress: list[tuple[int, int]] = []

    def run() -> None:
        runs.append(1)
        clock.advance_ms(float(len(runs)))

    # 1 cold + 2 warmup + 3 measured, then asked to stop before the fourth measured run.
    timings = time_runs(
        run,
        warmup=2,
        iterations=10,
        clock=clock,
        should_stop=lambda: len(runs) == 6,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert timings.stopped is True
    assert timings.cold_ms == pytest.approx(1.0)
    assert timings.warmup_ms == pytest.approx((2.0, 3.0))
    assert timings.samples_ms == pytest.approx((4.0, 5.0, 6.0))
    assert progress == [(1, 10), (2, 10), (3, 10)]
    assert len(runs) == 6


def test_stopping_before_any_run_or_during_warmup() -> None:
    runs: list[int] = []
    before = time_runs(lambda: runs.append(1), 2, 5, should_stop=lambda: True)
    assert before.stopped is True and math.isnan(before.cold_ms)
    assert before.warmup_ms == () and before.samples_ms == () and runs == []

    during = time_runs(
        lambda: runs.append(1), 5, 5, clock=clock_at(0, 1, 1, 2), should_stop=lambda: len(runs) == 2
    )
    assert during.stopped is True
    assert during.cold_ms == pytest.approx(1000.0)
    assert during.warmup_ms == pytest.approx((1000.0,))
    assert during.samples_ms == ()


def test_real_clock_measures_real_time() -> None:
    timings = time_runs(lambda: time.sleep(0.002), warmup=1, iterations=3)
    assert len(timings.samples_ms) == 3
    assert all(sample >= 2.0 for sample in timings.samples_ms)


@pytest.mark.parametrize(("warmup", "iterations"), [(-1, 5), (0, 0)])
def test_time_runs_refuses_bad_counts(warmup: int, iterations: int) -> None:
    with pytest.raises(ValueError):
        time_runs(lambda: None, warmup, iterations)


# --- stats --------------------------------------------------------------------------------------


def test_summary_of_one_to_one_hundred_matches_type_7_by_hand() -> None:
    result = summarize([float(value) for value in range(1, 101)], batch_size=1, seed=0)
    # Type 7: the p-th percentile of n sorted values sits at 0-based position (n - 1) * p / 100.
    assert result.samples == 100
    assert result.mean_ms == pytest.approx(50.5)
    assert result.p50_ms == pytest.approx(50.5)  # position 49.5: between 50 and 51
    assert result.p95_ms == pytest.approx(95.05)  # position 94.05: 95 + 0.05 * (96 - 95)
    assert result.p99_ms == pytest.approx(99.01)  # position 98.01
    assert result.min_ms == 1.0 and result.max_ms == 100.0
    # Sample variance of 1..n is n (n + 1) / 12.
    assert result.std_ms == pytest.approx(math.sqrt(100 * 101 / 12))
    assert result.throughput_fps == pytest.approx(1000.0 / 50.5)


def test_summary_of_a_small_sample_and_throughput_per_batch() -> None:
    result = summarize([40.0, 10.0, 30.0, 20.0], batch_size=8, seed=3)
    assert result.p50_ms == pytest.approx(25.0)
    assert result.p95_ms == pytest.approx(38.5)  # position 2.85: 30 + 0.85 * 10
    assert result.p99_ms == pytest.approx(39.7)
    assert result.std_ms == pytest.approx(math.sqrt(500.0 / 3.0))
    assert result.throughput_fps == pytest.approx(8 * 1000.0 / 25.0)  # 320 samples/s


def test_one_sample_has_no_spread() -> None:
    result = summarize([12.5], batch_size=2, seed=0)
    assert result.std_ms == 0.0
    assert result.p95_ci == Interval(12.5, 12.5)
    assert result.throughput_ci == Interval(160.0, 160.0)


def test_percentile_method_is_documented() -> None:
    assert stats.PERCENTILE_METHOD == "linear"
    assert "Hyndman & Fan type 7" in (stats.__doc__ or "")


def _latencies(seed: int, count: int = 200) -> list[float]:
    return list(np.random.default_rng(seed).lognormal(mean=2.0, sigma=0.3, size=count))


def test_intervals_are_deterministic_per_seed() -> None:
    samples = _latencies(1)
    first = summarize(samples, batch_size=4, seed=11)
    assert summarize(samples, batch_size=4, seed=11).intervals() == first.intervals()
    other = summarize(samples, batch_size=4, seed=12)
    assert other.intervals() != first.intervals()
    for name, interval in first.intervals().items():
        again = other.intervals()[name]
        width = interval.high - interval.low
        assert abs(again.low - interval.low) < 0.25 * width
        assert abs(again.high - interval.high) < 0.25 * width


def test_intervals_contain_their_point_estimates() -> None:
    result = summarize(_latencies(2), batch_size=1, seed=0)
    metrics = result.metrics()
    for name, interval in result.intervals().items():
        assert interval.low < metrics[name] < interval.high, name


def test_throughput_interval_covers_the_true_value_about_95_percent_of_the_time() -> None:
    # Exponential latencies with mean 10 ms: the true throughput is 100 samples/s.
    rng = np.random.default_rng(5)
    trials = 200
    covered = 0
    for trial in range(trials):
        samples = list(rng.exponential(10.0, size=100))
        interval = summarize(samples, batch_size=1, seed=trial, resamples=500).throughput_ci
        covered += interval.low <= 100.0 <= interval.high
    assert 0.88 <= covered / trials <= 0.99


def test_metrics_and_intervals_use_the_stored_names() -> None:
    result = summarize(_latencies(3, 20), batch_size=1, seed=0)
    assert set(result.metrics()) == {
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "latency_min_ms",
        "latency_max_ms",
        "latency_std_ms",
        "throughput_fps",
    }
    assert set(result.intervals()) == {"latency_p95_ms", "latency_p99_ms", "throughput_fps"}
    assert all(type(value) is float for value in result.metrics().values())


@pytest.mark.parametrize(
    ("samples", "batch_size", "resamples", "level"),
    [
        ([], 1, 100, 0.95),
        ([1.0, 0.0], 1, 100, 0.95),
        ([1.0, -2.0], 1, 100, 0.95),
        ([1.0, math.nan], 1, 100, 0.95),
        ([1.0], 0, 100, 0.95),
        ([1.0], 1, 0, 0.95),
        ([1.0], 1, 100, 1.0),
    ],
)
def test_summarize_refuses_bad_input(
    samples: list[float], batch_size: int, resamples: int, level: float
) -> None:
    with pytest.raises(ValueError):
        summarize(samples, batch_size, seed=0, resamples=resamples, level=level)
