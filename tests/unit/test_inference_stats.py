"""The prediction pool's counts: histogram buckets with Prometheus' ``le`` edges, quantiles checked
against values computed by hand, snapshots that merge across replicas, and records from several
threads at once. Last, the Prometheus shell built and fed without a Ray cluster."""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

import pytest

from cvplatform.inference.stats import (
    LATENCY_BUCKETS_MS,
    LATENCY_KINDS,
    InferenceStats,
    histogram_quantile,
    merge_snapshots,
    normalized_snapshot,
)

INF_BUCKET = len(LATENCY_BUCKETS_MS)


def record(stats: InferenceStats, model_id: str, total_ms: float, images: int = 1) -> None:
    """One success whose three latencies are all ``total_ms``: each histogram gets the value."""
    stats.record_success(
        model_id, queue_wait_ms=total_ms, inference_ms=total_ms, total_ms=total_ms, images=images
    )


def bucket_of(value_ms: float) -> int:
    stats = InferenceStats()
    record(stats, "m", value_ms)
    counts: list[int] = stats.snapshot()["latency_ms"]["total"]["counts"]
    assert sum(counts) == 1
    return counts.index(1)


# --- buckets and quantiles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_ms", "bucket"),
    [
        (0.0, 0),
        (1.0, 0),  # equal to a bound: in that bound's bucket (le)
        (1.0001, 1),
        (2.0, 1),
        (4.999, 2),
        (5.0, 2),
        (10000.0, 12),
        (30000.0, INF_BUCKET - 1),  # the highest bound is still a finite bucket
        (30000.001, INF_BUCKET),
        (1e9, INF_BUCKET),
    ],
)
def test_a_value_goes_in_the_first_bucket_whose_bound_is_not_below_it(
    value_ms: float, bucket: int
) -> None:
    assert bucket_of(value_ms) == bucket


def test_quantiles_interpolate_inside_the_bucket_as_prometheus_does() -> None:
    bounds = (1.0, 2.0, 5.0)
    counts = (2, 2, 4, 2)  # cumulative 2, 4, 8, 10 (the last two above 5: +Inf)
    # rank 1 in (0, 1]: 0 + 1 * 1/2
    assert histogram_quantile(bounds, counts, 0.1) == pytest.approx(0.5)
    # rank 2.5 in (1, 2]: 1 + 1 * (2.5 - 2)/2
    assert histogram_quantile(bounds, counts, 0.25) == pytest.approx(1.25)
    # rank 5 in (2, 5]: 2 + 3 * (5 - 4)/4
    assert histogram_quantile(bounds, counts, 0.5) == pytest.approx(2.75)
    # rank 8 is the end of (2, 5]: its upper bound exactly
    assert histogram_quantile(bounds, counts, 0.8) == pytest.approx(5.0)
    # rank 9.5 falls in +Inf: the highest finite bound
    assert histogram_quantile(bounds, counts, 0.95) == 5.0
    assert histogram_quantile(bounds, counts, 1.0) == 5.0


def test_quantile_zero_is_the_lower_edge_of_the_first_non_empty_bucket() -> None:
    assert histogram_quantile((1.0, 2.0, 5.0), (0, 0, 3, 0), 0.0) == 2.0
    assert histogram_quantile((1.0, 2.0, 5.0), (4, 0, 0, 0), 0.0) == 0.0


def test_an_empty_histogram_has_no_quantile() -> None:
    assert histogram_quantile((1.0, 2.0), (0, 0, 0), 0.5) is None


@pytest.mark.parametrize("q", [-0.1, 1.01])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile((1.0,), (1, 0), q)


def test_counts_must_match_the_bounds_plus_inf() -> None:
    with pytest.raises(ValueError, match="2 bounds need 3 counts"):
        histogram_quantile((1.0, 2.0), (1, 1), 0.5)


def test_snapshot_quantiles_come_from_the_recorded_values() -> None:
    stats = InferenceStats()
    for value_ms in (3.0, 4.0, 7.0, 12.0):  # buckets (2,5], (2,5], (5,10], (10,20]
        record(stats, "m", value_ms)
    total = stats.snapshot()["latency_ms"]["total"]
    assert total["count"] == 4
    assert total["sum_ms"] == 26.0
    # p50: rank 2 is the end of (2, 5] (2 there): 2 + 3 * 2/2
    assert total["p50"] == pytest.approx(5.0)
    # p95: rank 3.8 in (10, 20] (below it 3, 1 in it): 10 + 10 * 0.8
    assert total["p95"] == pytest.approx(18.0)
    # p99: rank 3.96 in (10, 20]: 10 + 10 * 0.96
    assert total["p99"] == pytest.approx(19.6)


def test_an_empty_snapshot_is_zeros_with_null_quantiles() -> None:
    snapshot = InferenceStats().snapshot()
    assert (snapshot["requests"], snapshot["succeeded"], snapshot["images"]) == (0, 0, 0)
    assert snapshot["errors"] == {} and snapshot["models"] == {}
    for kind in LATENCY_KINDS:
        histogram = snapshot["latency_ms"][kind]
        assert histogram["buckets_ms"] == list(LATENCY_BUCKETS_MS)
        assert histogram["counts"] == [0] * (len(LATENCY_BUCKETS_MS) + 1)
        assert (histogram["p50"], histogram["p95"], histogram["p99"]) == (None, None, None)
    assert merge_snapshots([]) == snapshot


# --- recording ----------------------------------------------------------------------------------


def test_each_latency_kind_has_its_own_histogram() -> None:
    stats = InferenceStats()
    stats.record_success("m", queue_wait_ms=0.5, inference_ms=15.0, total_ms=40.0, images=3)
    latency = stats.snapshot()["latency_ms"]
    assert latency["queue_wait"]["counts"][0] == 1  # (0, 1]
    assert latency["inference"]["counts"][4] == 1  # (10, 20]
    assert latency["total"]["counts"][5] == 1  # (20, 50]
    assert [latency[kind]["sum_ms"] for kind in LATENCY_KINDS] == [0.5, 15.0, 40.0]


def test_errors_count_by_code_for_the_pool_and_for_a_known_model_only() -> None:
    stats = InferenceStats()
    record(stats, "digits", 4.0, images=2)
    stats.record_error("digits", "queue_full")
    stats.record_error("digits", "queue_full")
    stats.record_error("digits", "invalid_input")
    stats.record_error(None, "not_found")  # no model resolved: the pool only
    stats.record_error(None, "unauthenticated")
    snapshot = stats.snapshot()
    assert snapshot["requests"] == 6 and snapshot["succeeded"] == 1 and snapshot["images"] == 2
    assert snapshot["errors"] == {
        "invalid_input": 1,
        "not_found": 1,
        "queue_full": 2,
        "unauthenticated": 1,
    }
    assert list(snapshot["models"]) == ["digits"]
    digits = snapshot["models"]["digits"]
    assert digits["requests"] == 4 and digits["succeeded"] == 1 and digits["images"] == 2
    assert digits["errors"] == {"invalid_input": 1, "queue_full": 2}
    assert "models" not in digits
    # Errors take no latency: only the one success is in the histograms.
    assert digits["latency_ms"]["total"]["count"] == 1


@pytest.mark.parametrize("bad_ms", [float("nan"), float("inf"), -0.5])
def test_a_latency_that_is_not_a_finite_non_negative_number_is_refused(bad_ms: float) -> None:
    stats = InferenceStats()
    with pytest.raises(ValueError, match="inference latency"):
        stats.record_success("m", queue_wait_ms=1.0, inference_ms=bad_ms, total_ms=2.0, images=1)
    assert stats.snapshot()["requests"] == 0  # nothing half-counted


def test_records_from_many_threads_add_up_exactly() -> None:
    stats = InferenceStats()
    threads_count, per_thread = 8, 500
    start = threading.Barrier(threads_count)

    def hammer(thread_index: int) -> None:
        start.wait()  # all threads record at once
        model_id = f"model-{thread_index % 2}"
        for index in range(per_thread):
            if index % 5 == 0:
                stats.record_error(model_id, "queue_full")
            else:
                record(stats, model_id, float(index % 40), images=2)

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = stats.snapshot()
    errors = threads_count * per_thread // 5
    successes = threads_count * per_thread - errors
    assert snapshot["requests"] == threads_count * per_thread
    assert snapshot["succeeded"] == successes and snapshot["images"] == 2 * successes
    assert snapshot["errors"] == {"queue_full": errors}
    assert snapshot["latency_ms"]["total"]["count"] == successes
    for model_id in ("model-0", "model-1"):
        assert snapshot["models"][model_id]["requests"] == threads_count * per_thread // 2


# --- merging and JSON ---------------------------------------------------------------------------


def replica_snapshots() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two replicas' snapshots, and one of a single stats object that saw every record of both."""
    first, second, together = InferenceStats(), InferenceStats(), InferenceStats()
    for stats in (first, together):
        record(stats, "a", 3.0)
        record(stats, "b", 40.0, images=4)
        stats.record_error("a", "queue_full")
        stats.record_error(None, "not_found")
    for stats in (second, together):
        record(stats, "a", 7.0, images=2)
        record(stats, "a", 50000.0)  # +Inf
        stats.record_error("c", "inference_timeout")
        stats.record_error("a", "queue_full")
    return first.snapshot(), second.snapshot(), together.snapshot()


def test_merged_snapshots_add_counts_sums_and_models() -> None:
    first, second, together = replica_snapshots()
    merged = merge_snapshots([first, second])
    assert merged == together
    assert merged["requests"] == 8 and merged["succeeded"] == 4 and merged["images"] == 8
    assert merged["errors"] == {"inference_timeout": 1, "not_found": 1, "queue_full": 2}
    assert sorted(merged["models"]) == ["a", "b", "c"]
    model_a = merged["models"]["a"]
    assert model_a["requests"] == 5 and model_a["errors"] == {"queue_full": 2}
    assert model_a["latency_ms"]["total"]["sum_ms"] == 3.0 + 7.0 + 50000.0
    # The quantiles are recomputed from the merged counts, not taken from either replica: 3 values
    # in (2,5], (5,10] and +Inf; p50 at rank 1.5 in (5, 10] (1 below, 1 in it): 5 + 5 * 0.5.
    assert model_a["latency_ms"]["total"]["p50"] == pytest.approx(7.5)
    assert first["models"]["a"]["latency_ms"]["total"]["p50"] == pytest.approx(3.5)
    assert model_a["latency_ms"]["total"]["p99"] == 30000.0


def test_a_snapshot_survives_json_and_reads_back_the_same() -> None:
    _, _, together = replica_snapshots()
    again = json.loads(json.dumps(together))
    assert again == together
    assert normalized_snapshot(again) == together


@pytest.mark.parametrize(
    "spoil",
    [
        lambda snapshot: snapshot.pop("models"),
        lambda snapshot: snapshot["latency_ms"]["total"].update(buckets_ms=[1, 2, 3]),
        lambda snapshot: snapshot["latency_ms"]["inference"]["counts"].pop(),
        lambda snapshot: snapshot["errors"].update(queue_full=-1),
        lambda snapshot: snapshot.update(requests="ten"),
        lambda snapshot: snapshot["models"]["a"]["latency_ms"].pop("queue_wait"),
    ],
)
def test_a_snapshot_of_another_shape_is_refused_by_name(spoil: Any) -> None:
    first, _, _ = replica_snapshots()
    spoil(first)
    with pytest.raises(ValueError):
        merge_snapshots([first])


# --- the Prometheus shell -----------------------------------------------------------------------


def test_prometheus_metrics_are_built_and_fed_without_a_cluster() -> None:
    # Ray's metrics need no `ray.init`: an invalid name only warns (and the metric is dropped),
    # a wrong tag raises; warnings are errors here so that neither passes unnoticed.
    from serve_apps.inference.metrics import PrometheusMetrics

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = PrometheusMetrics("SERVE_REPLICA::cvp#Pool#abc")
        metrics.record_success(
            "digits", queue_wait_ms=0.4, inference_ms=12.1, total_ms=15.3, images=2
        )
        metrics.record_success(
            "digits", queue_wait_ms=0.0, inference_ms=1.0, total_ms=1.0, images=0
        )
        metrics.record_error("digits", "queue_full")
        metrics.record_error(None, "not_found")
        metrics.set_pool(busy=2, queued=5, models_loaded=1)
    described = {info["name"]: info for info in metrics.described()}
    assert set(described) == {
        "cvp_inference_requests_total",
        "cvp_inference_errors_total",
        "cvp_inference_images_total",
        "cvp_inference_queue_wait_ms",
        "cvp_inference_latency_ms",
        "cvp_inference_total_ms",
        "cvp_inference_busy",
        "cvp_inference_queued",
        "cvp_inference_models_loaded",
    }
    assert described["cvp_inference_requests_total"]["tag_keys"] == ("model", "outcome")
    assert described["cvp_inference_errors_total"]["tag_keys"] == ("model", "code")
    assert described["cvp_inference_busy"]["tag_keys"] == ("replica",)
    assert described["cvp_inference_total_ms"]["boundaries"] == list(LATENCY_BUCKETS_MS)
