"""Constraints on benchmark metrics: parsing, checking, verdicts with margins and noise flags."""

from __future__ import annotations

import json
import math

import pytest

from cvplatform.benchmarking.constraints import (
    METRICS,
    OPERATORS,
    Constraint,
    check_constraint,
    evaluate,
    format_number,
    parse_constraint,
)
from cvplatform.benchmarking.stats import Interval

SECTION_3_METRICS = {
    "latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_min_ms",
    "latency_max_ms", "latency_std_ms", "throughput_fps", "cpu_percent", "machine_cpu_percent",
    "host_memory_mb", "gpu_percent", "vram_mb", "setup_s", "cold_ms", "accuracy_percent",
    "accuracy_drop_pp", "agreement_percent",
}  # fmt: skip


def test_the_metrics_are_exactly_those_of_the_contract_with_units_and_directions() -> None:
    assert set(METRICS) == SECTION_3_METRICS
    assert METRICS["latency_p95_ms"].unit == "ms"
    assert METRICS["latency_p95_ms"].better == "lower"
    assert METRICS["throughput_fps"].better == "higher"
    for name in ("cpu_percent", "machine_cpu_percent", "gpu_percent"):
        assert (METRICS[name].unit, METRICS[name].better) == ("%", "lower")
    for name in ("host_memory_mb", "vram_mb"):
        assert (METRICS[name].unit, METRICS[name].better) == ("MB", "lower")
    assert (METRICS["setup_s"].better, METRICS["cold_ms"].better) == ("lower", "lower")
    assert (METRICS["accuracy_percent"].unit, METRICS["accuracy_percent"].better) == ("%", "higher")
    assert (METRICS["accuracy_drop_pp"].unit, METRICS["accuracy_drop_pp"].better) == ("pp", "lower")
    assert METRICS["agreement_percent"].better == "higher"
    assert all(info.description for info in METRICS.values())
    assert OPERATORS == ("<", "<=", ">", ">=")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latency_p95_ms < 50", Constraint("latency_p95_ms", "<", 50.0)),
        ("throughput_fps>20", Constraint("throughput_fps", ">", 20.0)),
        ("  vram_mb <=4096 ", Constraint("vram_mb", "<=", 4096.0)),
        ("accuracy_percent >= 90.5", Constraint("accuracy_percent", ">=", 90.5)),
        ("accuracy_drop_pp<=0.5", Constraint("accuracy_drop_pp", "<=", 0.5)),
        ("setup_s < 1e1", Constraint("setup_s", "<", 10.0)),
    ],
)
def test_good_constraints_parse(text: str, expected: Constraint) -> None:
    assert parse_constraint(text) == expected


def test_a_constraint_prints_as_it_is_written() -> None:
    assert str(parse_constraint("latency_p95_ms<50")) == "latency_p95_ms < 50"
    assert str(parse_constraint("accuracy_drop_pp <= 0.5")) == "accuracy_drop_pp <= 0.5"


def test_an_unknown_metric_names_the_known_ones_sorted() -> None:
    with pytest.raises(ValueError, match="unknown metric 'latency_p97_ms'") as raised:
        parse_constraint("latency_p97_ms < 50")
    assert f"known metrics are {', '.join(sorted(SECTION_3_METRICS))}" in str(raised.value)


@pytest.mark.parametrize("op", ["=", "==", "!=", "=>", "=<", "<<", "<>"])
def test_an_unknown_operator_names_the_four(op: str) -> None:
    with pytest.raises(ValueError, match=f"unknown operator '{op}'") as raised:
        parse_constraint(f"latency_p95_ms {op} 50")
    assert "<, <=, >, >=" in str(raised.value)


@pytest.mark.parametrize("value", ["abc", "50ms", "nan", "inf", "-inf", "5 0"])
def test_a_value_that_is_not_a_finite_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="number"):
        parse_constraint(f"latency_p95_ms < {value}")


@pytest.mark.parametrize(
    "text", ["", "   ", "latency_p95_ms", "latency_p95_ms 50", "< 50", "latency_p95_ms <"]
)
def test_text_without_metric_operator_and_value_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_constraint(text)


def test_check_constraint_refuses_what_parsing_would() -> None:
    check_constraint(Constraint("vram_mb", "<=", 4096))
    with pytest.raises(ValueError, match="unknown metric"):
        check_constraint(Constraint("fps", ">", 20))
    with pytest.raises(ValueError, match="unknown operator"):
        check_constraint(Constraint("throughput_fps", "=", 20))
    with pytest.raises(ValueError, match="finite number"):
        check_constraint(Constraint("throughput_fps", ">", math.nan))


def test_under_a_limit_passes_with_the_room_to_spare() -> None:
    verdict = evaluate(parse_constraint("latency_p95_ms < 50"), {"latency_p95_ms": 41.2}, {})
    assert verdict.passed is True
    assert verdict.margin == pytest.approx(8.8)
    assert verdict.margin_percent == pytest.approx(17.6)
    assert not verdict.within_noise
    assert verdict.note == "p95 latency 41.2 ms is under 50 ms by 8.8 ms (17.6%)"


def test_over_a_limit_fails_with_a_negative_margin() -> None:
    verdict = evaluate(parse_constraint("vram_mb <= 4096"), {"vram_mb": 5120.0}, {})
    assert verdict.passed is False
    assert verdict.margin == pytest.approx(-1024.0)
    assert verdict.margin_percent == pytest.approx(-25.0)
    assert verdict.note == "VRAM 5120 MB is over 4096 MB by 1024 MB (25%)"


def test_above_a_floor_passes_and_below_it_fails() -> None:
    floor = parse_constraint("throughput_fps > 20")
    above = evaluate(floor, {"throughput_fps": 25.0}, {})
    assert (above.passed, above.margin, above.margin_percent) == (True, 5.0, 25.0)
    assert above.note == "throughput 25 samples/s is above 20 samples/s by 5 samples/s (25%)"
    below = evaluate(parse_constraint("accuracy_percent >= 90"), {"accuracy_percent": 85.5}, {})
    assert (below.passed, below.margin) == (False, -4.5)
    assert below.margin_percent == pytest.approx(-5.0)
    assert below.note == "accuracy 85.5% is below 90% by 4.5% (5%)"


@pytest.mark.parametrize(("op", "passes"), [("<", False), ("<=", True), (">", False), (">=", True)])
def test_a_value_on_the_limit_passes_only_the_inclusive_operators(op: str, passes: bool) -> None:
    verdict = evaluate(Constraint("setup_s", op, 2.0), {"setup_s": 2.0}, {})
    assert verdict.passed is passes
    assert verdict.margin == 0.0
    assert "equals the limit of 2 s" in verdict.note
    assert ("does not allow" in verdict.note) is not passes


def test_a_zero_threshold_has_no_percentage() -> None:
    verdict = evaluate(parse_constraint("accuracy_drop_pp <= 0"), {"accuracy_drop_pp": 0.3}, {})
    assert (verdict.passed, verdict.margin_percent) == (False, None)
    assert verdict.margin == pytest.approx(-0.3)
    assert verdict.note == "accuracy drop 0.3 pp is over 0 pp by 0.3 pp"


def test_a_threshold_inside_the_confidence_interval_is_within_noise() -> None:
    intervals = {"latency_p95_ms": Interval(47.0, 52.3)}
    verdict = evaluate(parse_constraint("latency_p95_ms < 50"), {"latency_p95_ms": 48.5}, intervals)
    assert verdict.passed is True
    assert verdict.within_noise is True
    assert verdict.note == (
        "p95 latency 48.5 ms is under 50 ms by 1.5 ms (3%)"
        " — within measurement noise (95% CI 47.0\N{EN DASH}52.3 ms)"
    )


def test_a_threshold_outside_the_interval_or_without_one_is_not_within_noise() -> None:
    constraint = parse_constraint("latency_p95_ms < 50")
    outside = evaluate(
        constraint, {"latency_p95_ms": 45.0}, {"latency_p95_ms": Interval(44.0, 46.0)}
    )
    assert outside.within_noise is False
    assert "noise" not in outside.note
    no_interval = evaluate(constraint, {"latency_p95_ms": 49.9}, {})
    assert no_interval.within_noise is False


def test_an_unmeasured_metric_gives_no_verdict_and_says_why() -> None:
    constraint = parse_constraint("accuracy_drop_pp <= 1")
    for metrics in ({}, {"accuracy_drop_pp": None}):
        verdict = evaluate(constraint, metrics, {})
        assert (verdict.passed, verdict.measured, verdict.margin) == (None, None, None)
        assert verdict.note.startswith("not measured: ")
        assert "labelled dataset" in verdict.note
    vram = evaluate(parse_constraint("vram_mb < 100"), {"vram_mb": None}, {})
    assert vram.passed is None
    assert "GPU" in vram.note


def test_a_verdict_is_json_ready_with_sorted_keys() -> None:
    verdict = evaluate(parse_constraint("latency_p95_ms < 50"), {"latency_p95_ms": 41}, {})
    as_dict = verdict.as_dict()
    assert list(as_dict) == sorted(as_dict)
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["measured"] == 41.0
    assert isinstance(as_dict["measured"], float)


def test_numbers_in_notes_are_short() -> None:
    assert [format_number(v) for v in (50.0, 8.8, 0.125, 1234.56, 2.5, -0.0)] == [
        "50", "8.8", "0.125", "1234.6", "2.5", "0",
    ]  # fmt: skip
