"""Engine selection (FR5.4): constraints first, then the objective, then memory among candidates
within measurement noise; when nothing passes, the closest candidate and what would change it."""

from __future__ import annotations

import json

import pytest

from cvplatform.benchmarking.constraints import Constraint, parse_constraint
from cvplatform.benchmarking.selection import Candidate, Selection, select, total_violation
from cvplatform.benchmarking.stats import Interval

NO_GPU = "no GPU: NVML could not start; no NVIDIA driver here"
THREE = [
    parse_constraint("latency_p95_ms < 50"),
    parse_constraint("throughput_fps > 20"),
    parse_constraint("accuracy_drop_pp <= 1"),
]


def candidate(
    engine: str,
    batch_size: int,
    p95: float,
    fps: float,
    *,
    host_mb: float = 300.0,
    vram_mb: float | None = None,
    drop: float | None = 0.0,
    noise: float = 0.5,
) -> Candidate:
    metrics = {
        "latency_p95_ms": p95,
        "throughput_fps": fps,
        "host_memory_mb": host_mb,
        "vram_mb": vram_mb,
        "accuracy_drop_pp": drop,
    }
    intervals = {
        "latency_p95_ms": Interval(p95 - noise, p95 + noise),
        "throughput_fps": Interval(fps - noise * 10, fps + noise * 10),
    }
    return Candidate(engine, batch_size, metrics, intervals)


def four_cpu_candidates() -> list[Candidate]:
    return [
        candidate("onnxruntime_cpu", 1, 30.0, 33.0, drop=0.0),
        candidate("onnxruntime_cpu", 8, 140.0, 57.0, drop=0.0),
        candidate("onnxruntime_cpu_int8", 1, 9.0, 111.0, drop=1.4),  # fastest, loses accuracy
        candidate("onnxruntime_cpu_int8", 8, 12.3, 650.0, drop=0.6),
    ]


def rules(selection: Selection) -> list[str]:
    return [step.rule for step in selection.steps]


def test_the_lowest_p95_among_the_candidates_meeting_every_constraint_is_selected() -> None:
    candidates = [*four_cpu_candidates(), candidate("onnxruntime_cpu", 4, 40.0, 100.0)]
    selection = select(candidates, THREE)
    assert selection.selected == "onnxruntime_cpu_int8@8"
    assert (selection.closest, selection.suggestions) == (None, ())
    assert rules(selection) == ["constraints", "objective"]
    constraints, objective = selection.steps
    assert constraints.kept == ("onnxruntime_cpu@1", "onnxruntime_cpu@4", "onnxruntime_cpu_int8@8")
    assert constraints.removed == {
        "onnxruntime_cpu@8": "p95 latency 140 ms is over 50 ms by 90 ms (180%)",
        "onnxruntime_cpu_int8@1": "accuracy drop 1.4 pp is over 1 pp by 0.4 pp (40%)",
    }
    assert objective.kept == ("onnxruntime_cpu_int8@8", "onnxruntime_cpu@1", "onnxruntime_cpu@4")
    assert "onnxruntime_cpu_int8@8 is best at 12.3 ms" in objective.note
    assert selection.summary == (
        "onnxruntime_cpu_int8 at batch 8 is selected: it meets all 3 constraints and has the "
        "lowest p95 latency (12.3 ms) of the 3 candidates that do."
    )
    assert [v.passed for v in selection.verdicts["onnxruntime_cpu_int8@1"]] == [True, True, False]


def test_the_throughput_objective_selects_the_highest_throughput() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 30.0, 33.0),
        candidate("onnxruntime_cpu", 8, 45.0, 177.0),
        candidate("onnxruntime_cpu", 32, 160.0, 200.0),  # fastest, but over the latency limit
    ]
    selection = select(candidates, THREE[:1], objective="throughput")
    assert selection.objective == "throughput"
    assert selection.selected == "onnxruntime_cpu@8"
    assert selection.steps[1].kept == ("onnxruntime_cpu@8", "onnxruntime_cpu@1")
    assert "highest throughput" in selection.summary
    assert "the 1 constraint" in selection.summary


def test_a_tie_within_noise_goes_to_the_lower_host_memory() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 20.0, 50.0, host_mb=400.0, noise=1.0),
        candidate("onnxruntime_cpu_int8", 1, 21.0, 48.0, host_mb=250.0, noise=1.0),
        candidate("onnxruntime_cpu_int8", 8, 30.0, 260.0, host_mb=100.0, noise=1.0),  # not tied
    ]
    selection = select(candidates, THREE)
    assert selection.selected == "onnxruntime_cpu_int8@1"
    assert rules(selection) == ["constraints", "objective", "noise_tie_break"]
    tie = selection.steps[2]
    assert tie.kept == ("onnxruntime_cpu_int8@1",)
    assert set(tie.removed) == {"onnxruntime_cpu@1"}
    assert "400 MB" in tie.removed["onnxruntime_cpu@1"]
    assert "uses the least engine host memory of them (250 MB)" in tie.note
    assert "within measurement noise of the lowest" in selection.summary
    assert "onnxruntime_cpu@1" in selection.summary


def test_vram_decides_the_tie_when_every_tied_candidate_has_it() -> None:
    candidates = [
        candidate("onnxruntime_cuda", 8, 5.0, 1600.0, host_mb=900.0, vram_mb=700.0),
        candidate("tensorrt_fp16", 8, 5.2, 1540.0, host_mb=1200.0, vram_mb=300.0),
    ]
    selection = select(candidates, THREE)
    assert selection.selected == "tensorrt_fp16@8"
    assert "VRAM" in selection.steps[2].note


def test_equal_memory_within_noise_falls_to_the_key() -> None:
    candidates = [
        candidate("onnxruntime_cpu_int8", 1, 20.0, 50.0, noise=2.0),
        candidate("onnxruntime_cpu", 1, 21.0, 48.0, noise=2.0),
    ]
    selection = select(candidates, THREE)
    assert selection.selected == "onnxruntime_cpu@1"  # not the faster one: same memory, first key
    assert "the key breaks the tie" in selection.steps[2].removed["onnxruntime_cpu_int8@1"]
    assert "comes first by key" in selection.steps[2].note


def test_without_overlapping_intervals_there_is_no_tie_break() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 20.0, 50.0, host_mb=400.0, noise=0.1),
        candidate("onnxruntime_cpu_int8", 1, 21.0, 48.0, host_mb=250.0, noise=0.1),
    ]
    selection = select(candidates, THREE)
    assert selection.selected == "onnxruntime_cpu@1"
    assert rules(selection) == ["constraints", "objective"]


def test_an_unmeasured_constraint_removes_the_candidate_and_says_why() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 10.0, 100.0, drop=None),
        candidate("onnxruntime_cpu", 8, 40.0, 200.0, drop=0.0),
    ]
    selection = select(candidates, THREE)
    assert selection.selected == "onnxruntime_cpu@8"
    assert selection.steps[0].removed["onnxruntime_cpu@1"].startswith("not measured: ")


def test_nothing_passing_names_the_closest_and_the_suggestions_that_apply() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 30.0, 33.0),
        candidate("onnxruntime_cpu", 8, 140.0, 57.0),
    ]
    constraints = [
        parse_constraint("latency_p95_ms < 20"),
        parse_constraint("throughput_fps > 100"),
    ]
    unavailable = {"onnxruntime_cuda": NO_GPU, "tensorrt_fp16": NO_GPU}
    selection = select(candidates, constraints, engines_unavailable=unavailable)
    assert selection.selected is None
    # violations: @1 = 10/20 + 67/100 = 1.17; @8 = 120/20 + 43/100 = 6.43
    assert selection.closest == "onnxruntime_cpu@1"
    assert rules(selection) == ["constraints", "closest"]
    closest = selection.steps[1]
    assert closest.kept == ("onnxruntime_cpu@1",)
    assert "1.17" in closest.note
    assert "6.43" in closest.removed["onnxruntime_cpu@8"]
    assert selection.suggestions == (
        "batch size 1 of onnxruntime_cpu comes closer to latency_p95_ms < 20",
        "batch size 8 of onnxruntime_cpu comes closer to throughput_fps > 100",
        "try a larger batch size than 8 for onnxruntime_cpu: throughput_fps > 100 fails at batch 8",
        "try INT8 (onnxruntime_cpu_int8)",
        f"FP16 on a GPU (tensorrt_fp16) — unavailable here: {NO_GPU}",
    )
    assert selection.summary.startswith("No candidate is selected: none of the 2 meets all 2")
    assert "try INT8 (onnxruntime_cpu_int8)" in selection.summary


def test_a_smaller_batch_that_meets_the_latency_is_named() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 30.0, 33.0),  # meets latency, misses throughput
        candidate("onnxruntime_cpu", 8, 140.0, 57.0),
        candidate("onnxruntime_cpu", 32, 520.0, 55.0),  # larger, tried, and no faster than 8
        candidate("tensorrt_fp16", 1, 60.0, 16.0),  # a GPU engine ran
    ]
    constraints = [
        parse_constraint("latency_p95_ms < 50"),
        parse_constraint("throughput_fps > 100"),
    ]
    selection = select(candidates, constraints)
    assert "batch size 1 of onnxruntime_cpu meets latency_p95_ms < 50" in selection.suggestions
    assert not any("larger batch size than" in s and "cpu" in s for s in selection.suggestions)
    assert "batch size 8 of onnxruntime_cpu comes closer to throughput_fps > 100" in (
        selection.suggestions
    )
    assert (
        "try a larger batch size than 1 for tensorrt_fp16: throughput_fps > 100 fails at batch 1"
        in selection.suggestions
    )
    assert not any("GPU" in s for s in selection.suggestions)
    assert not any("accuracy" in s for s in selection.suggestions)
    # TensorRT tried batch 1 only and its latency failed there: nothing smaller to try.
    assert not any("smaller than" in s for s in selection.suggestions)


def test_a_smaller_batch_not_tried_is_suggested() -> None:
    selection = select(
        [candidate("onnxruntime_cpu_int8", 8, 70.0, 114.0)],
        [parse_constraint("latency_p95_ms < 50")],
    )
    assert selection.closest == "onnxruntime_cpu_int8@8"
    assert selection.suggestions == (
        "try a batch size smaller than 8 for onnxruntime_cpu_int8: "
        "latency_p95_ms < 50 fails at batch 8",
        "try FP16 on a GPU (tensorrt_fp16)",
    )


def test_an_accuracy_failure_of_int8_suggests_fp32_and_nothing_faster() -> None:
    selection = select(
        [candidate("onnxruntime_cpu_int8", 1, 9.0, 111.0, drop=1.5)],
        [parse_constraint("accuracy_drop_pp <= 1")],
        engines_unavailable={"tensorrt_fp16": NO_GPU},
    )
    assert selection.suggestions == ("FP32 keeps the accuracy; INT8 costs 1.5 pp here",)


def test_an_unmeasured_constraint_counts_one_in_the_total_violation() -> None:
    candidates = [
        candidate("onnxruntime_cpu", 1, 10.0, 100.0, drop=None),  # violation 1 (not measured)
        candidate("onnxruntime_cpu", 8, 80.0, 100.0),  # violation 30/50 = 0.6
    ]
    selection = select(candidates, THREE)
    assert selection.closest == "onnxruntime_cpu@8"
    assert total_violation(selection.verdicts["onnxruntime_cpu@1"]) == 1.0
    assert total_violation(selection.verdicts["onnxruntime_cpu@8"]) == pytest.approx(0.6)


def test_no_candidates_selects_nothing_and_says_why() -> None:
    selection = select([], THREE, engines_unavailable={"tensorrt_fp16": NO_GPU})
    assert (selection.selected, selection.closest, selection.steps) == (None, None, ())
    assert selection.summary == (
        "No candidate is selected: no engine x batch size was measured "
        f"(unavailable here: tensorrt_fp16: {NO_GPU})."
    )
    assert json.loads(json.dumps(selection.as_dict()))["verdicts"] == {}


def test_without_constraints_every_candidate_is_kept() -> None:
    selection = select(four_cpu_candidates(), [])
    assert selection.selected == "onnxruntime_cpu_int8@1"
    assert "no constraints given" in selection.steps[0].note
    assert "no constraints were given" in selection.summary


def test_a_candidate_without_the_objective_metric_is_not_ranked() -> None:
    unmeasured = Candidate("onnxruntime_cpu", 2, {"throughput_fps": 90.0}, {})
    selection = select([unmeasured, candidate("onnxruntime_cpu", 1, 30.0, 33.0)], [])
    assert selection.selected == "onnxruntime_cpu@1"
    assert selection.steps[1].removed["onnxruntime_cpu@2"].startswith("not measured")


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown objective"):
        select(four_cpu_candidates(), THREE, objective="memory")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share a key"):
        select([candidate("onnxruntime_cpu", 1, 1.0, 1.0)] * 2, THREE)
    with pytest.raises(ValueError, match="unknown operator"):
        select(four_cpu_candidates(), [Constraint("latency_p95_ms", "=", 5.0)])


@pytest.mark.parametrize(
    "constraints",
    [THREE, [parse_constraint("latency_p95_ms < 5"), parse_constraint("throughput_fps > 1000")]],
)
def test_the_same_input_in_any_order_gives_the_same_bytes(constraints: list[Constraint]) -> None:
    candidates = four_cpu_candidates()
    first = json.dumps(select(candidates, constraints).as_dict())
    again = json.dumps(select(candidates, constraints).as_dict())
    shuffled = json.dumps(select(candidates[::-1], constraints).as_dict())
    assert first == again == shuffled
    as_dict = json.loads(first)
    assert list(as_dict) == sorted(as_dict)
    assert list(as_dict["verdicts"]) == sorted(as_dict["verdicts"])
    assert as_dict["steps"][0]["rule"] == "constraints"
