"""The names the wire, the SDK and the measuring code share stay one list each."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from cvplatform.benchmarking.constraints import METRICS, OPERATORS
from cvplatform.engines import ENGINE_NAMES
from cvplatform.schemas import METRIC_NAMES, BenchmarkRequest, ConstraintOperator, EngineName


def test_the_wire_knows_the_metrics_operators_and_engines_the_code_knows() -> None:
    assert set(METRIC_NAMES) == set(METRICS)
    assert get_args(ConstraintOperator) == OPERATORS
    assert get_args(EngineName) == ENGINE_NAMES


def test_batch_sizes_are_sorted_and_the_defaults_are_the_issue_s() -> None:
    request = BenchmarkRequest(model_id="m", batch_sizes=[32, 1, 8])
    assert request.batch_sizes == [1, 8, 32]
    default = BenchmarkRequest(model_id="m")
    assert (default.batch_sizes, default.warmup_iterations, default.iterations) == (
        [1, 8, 32],
        20,
        200,
    )
    assert default.engines is None and default.objective == "latency"


@pytest.mark.parametrize(
    "change",
    [
        {"batch_sizes": []},
        {"batch_sizes": [0]},
        {"batch_sizes": [1025]},
        {"iterations": 0},
        {"engines": ["onnxruntime_cpu", "onnxruntime_cpu"]},
        {"input_shape": [3, 0, 224]},
        {"constraints": [{"metric": "latency_p95_ms", "op": "<", "value": float("nan")}]},
    ],
)
def test_requests_that_cannot_be_valid(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BenchmarkRequest.model_validate({"model_id": "m", **change})


def test_the_sdk_refuses_a_bad_constraint_before_sending_anything() -> None:
    from cvplatform.client import Client

    # Nothing listens there: a request would fail with a connection error, not this one.
    with Client("http://127.0.0.1:9", timeout_s=1) as client:
        with pytest.raises(ValueError, match="unknown metric 'speed'"):
            client.start_benchmark("m", constraints=["speed < 5"])
        with pytest.raises(ValueError, match="not a number"):
            client.start_benchmark("m", constraints=["latency_p95_ms < fast"])
