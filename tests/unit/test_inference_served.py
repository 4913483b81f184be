"""A model as the pool serves it, on this machine's real ONNX Runtime with toy models: which engine
and why, which models can be served, opening one, several requests run as one batch and split back,
a fixed batch padded, and a run in progress stopped from another thread."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cvplatform.engines import ModelFile, engine_for
from cvplatform.engines.base import RunStopped, Setup
from cvplatform.engines.onnxruntime_engines import OrtSession
from cvplatform.errors import Conflict, InvalidModel, NotFound
from cvplatform.inference.preprocessing import IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD
from cvplatform.inference.served import (
    CPU_ENGINE,
    CUDA_ENGINE,
    ServedModel,
    ServingInput,
    check_servable,
    engine_choice,
    open_served_model,
    run_together,
    runs_alone,
)
from tests.models_kit import onnx_slow_classifier
from tests.unit.engines_kit import (
    NO_GPU,
    context,
    images,
    model_file,
    seeded_calibration,
    toy_classifier,
    with_fixed_batch,
)

DYNAMIC_DIMS: tuple[int | str, ...] = ("batch", 3, 32, 32)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return toy_classifier(tmp_path_factory.mktemp("toy"))


def serving_input(
    onnx: ModelFile | None,
    *,
    dims: tuple[int | str, ...] | None = DYNAMIC_DIMS,
    status: str = "ready",
    selected_engine: str | None = None,
    selected_by: str | None = None,
) -> ServingInput:
    return ServingInput(
        model_id="m-1",
        name="toy",
        status=status,
        task_type="classification",
        onnx=onnx,
        input_dims=dims,
        preprocessing=None,
        class_names=("a", "b", "c", "d"),
        selected_engine=selected_engine,
        selected_by=selected_by,
    )


def availability(**why_not: str) -> Callable[[str], str | None]:
    """Every engine can run here except those named, each with its reason."""
    return lambda name: why_not.get(name)


# engine_choice ------------------------------------------------------------------------------------


def test_without_a_benchmark_the_cpu_serves_on_a_machine_without_a_gpu() -> None:
    engine, reason = engine_choice(serving_input(None), availability(), gpu_present=False)
    assert engine == CPU_ENGINE
    assert reason == "no benchmark has selected an engine for this model"


def test_without_a_benchmark_cuda_serves_where_a_gpu_and_cuda_are_there() -> None:
    engine, _ = engine_choice(serving_input(None), availability(), gpu_present=True)
    assert engine == CUDA_ENGINE


def test_without_a_benchmark_the_cpu_serves_where_the_gpu_has_no_cuda_runtime() -> None:
    no_cuda = availability(onnxruntime_cuda="onnxruntime-gpu is not installed")
    engine, _ = engine_choice(serving_input(None), no_cuda, gpu_present=True)
    assert engine == CPU_ENGINE


def test_the_benchmark_selection_serves_when_it_can_run_here() -> None:
    model = serving_input(None, selected_engine="onnxruntime_cpu_int8", selected_by="job-7")
    engine, reason = engine_choice(model, availability(), gpu_present=False)
    assert (engine, reason) == ("onnxruntime_cpu_int8", "selected by benchmark job-7")


@pytest.mark.parametrize(("gpu_present", "fallback"), [(False, CPU_ENGINE), (True, CUDA_ENGINE)])
def test_a_selection_that_cannot_run_here_falls_back_and_says_why(
    gpu_present: bool, fallback: str
) -> None:
    model = serving_input(None, selected_engine="tensorrt_fp16", selected_by="job-7")
    no_tensorrt = availability(tensorrt_fp16="TensorRT is not installed")
    engine, reason = engine_choice(model, no_tensorrt, gpu_present=gpu_present)
    assert engine == fallback
    assert "job-7" in reason and "tensorrt_fp16" in reason
    assert "TensorRT is not installed" in reason


# check_servable -----------------------------------------------------------------------------------


def test_no_model_is_not_found() -> None:
    with pytest.raises(NotFound, match="no model m-9"):
        check_servable(None, "m-9")


@pytest.mark.parametrize("status", ["uploaded", "converting", "invalid", "failed"])
def test_a_model_that_is_not_ready_is_a_conflict(toy: ModelFile, status: str) -> None:
    with pytest.raises(Conflict, match=status):
        check_servable(serving_input(toy, status=status), "m-1")


def test_a_ready_model_without_an_onnx_file_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        check_servable(serving_input(None), "m-1")


def test_a_ready_model_is_servable(toy: ModelFile) -> None:
    model = serving_input(toy)
    assert check_servable(model, "m-1") is model


# open_served_model --------------------------------------------------------------------------------


def test_a_ready_onnx_model_opens_on_onnx_runtime_cpu(toy: ModelFile, tmp_path: Path) -> None:
    readings = iter([5.0, 5.25])
    served = open_served_model(
        serving_input(toy), context(tmp_path), max_run=8, clock=lambda: next(readings)
    )
    assert served.engine == CPU_ENGINE
    assert served.engine_reason == "no benchmark has selected an engine for this model"
    assert (served.spec.height, served.spec.width) == (32, 32)  # from the input's dims
    assert (served.spec.mean, served.spec.std) == (IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD)
    assert served.fixed_batch is None
    assert served.class_names == ("a", "b", "c", "d")
    assert served.load_seconds == 0.25
    assert isinstance(served.session, OrtSession)
    (logits,) = served.run(images(3), max_run=8)
    assert logits.shape == (3, 4)
    described = served.describe()
    assert described["engine"] == CPU_ENGINE and described["last_used_at"] == served.loaded_at


def test_a_selection_that_cannot_run_here_is_served_on_the_cpu(
    toy: ModelFile, tmp_path: Path
) -> None:
    model = serving_input(toy, selected_engine="onnxruntime_cuda", selected_by="job-7")
    served = open_served_model(model, context(tmp_path), max_run=4)
    assert served.engine == CPU_ENGINE
    assert "job-7 selected onnxruntime_cuda, which cannot run here" in served.engine_reason
    assert NO_GPU.detail in served.engine_reason


def test_an_engine_the_platform_does_not_know_is_named_in_the_reason(
    toy: ModelFile, tmp_path: Path
) -> None:
    model = serving_input(toy, selected_engine="mystery_engine", selected_by="job-7")
    served = open_served_model(model, context(tmp_path), max_run=4)
    assert served.engine == CPU_ENGINE
    assert "mystery_engine is not an engine this platform knows" in served.engine_reason


def test_an_int8_selection_is_served_from_the_benchmarks_int8_cache(
    toy: ModelFile, tmp_path: Path
) -> None:
    cache = tmp_path / "engines"
    # What the benchmark did: quantize with calibration data, into the shared engine cache.
    benchmark_context = context(cache, calibration=seeded_calibration)
    engine_for("onnxruntime_cpu_int8", benchmark_context).open(toy, (3, 32, 32), [1]).release()

    model = serving_input(toy, selected_engine="onnxruntime_cpu_int8", selected_by="job-7")
    served = open_served_model(model, context(cache), max_run=4)  # the pool: no calibration
    assert served.engine == "onnxruntime_cpu_int8", served.engine_reason


def test_a_model_without_an_onnx_file_or_input_cannot_be_opened(
    toy: ModelFile, tmp_path: Path
) -> None:
    with pytest.raises(InvalidModel):
        open_served_model(serving_input(None), context(tmp_path), max_run=4)
    with pytest.raises(InvalidModel):
        open_served_model(serving_input(toy, dims=None), context(tmp_path), max_run=4)


def test_a_tensor_of_another_size_is_refused_before_it_runs(toy: ModelFile, tmp_path: Path) -> None:
    served = open_served_model(serving_input(toy), context(tmp_path), max_run=4)
    served.check_tensor(images(2))
    with pytest.raises(InvalidModel, match="3, 32, 32"):
        served.check_tensor(np.zeros((2, 3, 16, 16), np.float32))


# run_together and fixed batches -------------------------------------------------------------------


def one_by_one(served: ServedModel, batch: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [served.run(batch[index : index + 1], max_run=1)[0] for index in range(len(batch))]
    )


@pytest.mark.parametrize("max_run", [2, 8])
def test_requests_run_together_get_what_each_would_get_alone(
    toy: ModelFile, tmp_path: Path, max_run: int
) -> None:
    served = open_served_model(serving_input(toy), context(tmp_path), max_run=max_run)
    requests = [images(1, seed=1), images(3, seed=2), images(2, seed=3)]
    answers = run_together(served, requests, max_run=max_run)

    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        assert len(answer) == 1  # the toy has one output
        assert answer[0].shape == (len(request), 4)
        (alone,) = served.run(request, max_run=max_run)
        np.testing.assert_allclose(answer[0], alone, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(answer[0], one_by_one(served, request), rtol=1e-5, atol=1e-6)


def test_one_request_alone_runs_as_it_is(toy: ModelFile, tmp_path: Path) -> None:
    served = open_served_model(serving_input(toy), context(tmp_path), max_run=4)
    batch = images(3, seed=4)
    (answer,) = run_together(served, [batch], max_run=4)
    np.testing.assert_allclose(answer[0], one_by_one(served, batch), rtol=1e-5, atol=1e-6)


def test_a_fixed_batch_model_pads_the_last_chunk_and_answers_each_row(
    toy: ModelFile, tmp_path: Path
) -> None:
    fixed = with_fixed_batch(toy, tmp_path, batch=2)
    served = open_served_model(serving_input(fixed, dims=(2, 3, 32, 32)), context(tmp_path), 8)
    assert served.fixed_batch == 2
    dynamic = open_served_model(serving_input(toy), context(tmp_path), max_run=8)

    requests = [images(1, seed=5), images(2, seed=6)]  # three samples: one chunk of 2, one padded
    answers = run_together(served, requests, max_run=8)
    assert [answer[0].shape for answer in answers] == [(1, 4), (2, 4)]
    samples = np.concatenate(requests)
    rows = np.concatenate([answer[0] for answer in answers])
    np.testing.assert_allclose(rows, one_by_one(served, samples), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows, one_by_one(dynamic, samples), rtol=1e-5, atol=1e-6)


# cancel -------------------------------------------------------------------------------------------


class StandInSession:
    def __init__(self) -> None:
        self.setup = Setup("session_creation", 0.0, {})

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return [batch]

    def release(self) -> None:
        pass


def test_cancel_is_a_no_op_for_a_session_that_cannot_stop(toy: ModelFile, tmp_path: Path) -> None:
    served = open_served_model(serving_input(toy), context(tmp_path), max_run=4)
    served.session = StandInSession()
    served.cancel()
    assert served.run(images(1), max_run=4)[0].shape == (1, 3, 32, 32)


def test_cancel_stops_a_run_in_progress_and_the_next_run_works(tmp_path: Path) -> None:
    slow = model_file(onnx_slow_classifier(tmp_path / "slow.onnx"))
    model = serving_input(slow, dims=("batch", 3, 160, 160))
    served = open_served_model(model, context(tmp_path), max_run=16)
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((16, 3, 160, 160)).astype(np.float32)
    started = time.perf_counter()
    (single,) = served.run(batch[:1], max_run=16)
    one_sample_s = time.perf_counter() - started

    outcome: list[BaseException | list[np.ndarray]] = []

    def run_in_a_thread() -> None:
        try:
            outcome.append(served.run(batch, max_run=16))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run_in_a_thread)
    started = time.perf_counter()
    worker.start()
    # A cancel stops only runs in progress: repeat it until the run has started and stopped.
    while worker.is_alive() and time.perf_counter() - started < 10:
        served.cancel()
        worker.join(0.01)
    ran_s = time.perf_counter() - started
    worker.join()

    assert len(outcome) == 1 and isinstance(outcome[0], RunStopped), outcome
    # Sixteen samples take about sixteen times one; stopped, the run ends well before half that.
    assert ran_s < 8 * one_sample_s + 0.2, (ran_s, one_sample_s)
    (again,) = served.run(batch[:1], max_run=16)
    np.testing.assert_allclose(again, single, rtol=1e-5, atol=1e-6)


# a lone request on every core ---------------------------------------------------------------------


def test_a_pool_sharing_the_cores_opens_a_session_on_every_core_for_lone_runs(
    toy: ModelFile, tmp_path: Path
) -> None:
    shared = dataclasses.replace(context(tmp_path), spin_wait=False)
    every_core = dataclasses.replace(shared, threads=2)
    served = open_served_model(serving_input(toy), shared, 4, alone_context=every_core)
    assert isinstance(served.session, OrtSession) and isinstance(served.alone_session, OrtSession)
    assert served.session.setup.details["threads"] == 1
    assert served.alone_session.setup.details["threads"] == 2
    for session in (served.session, served.alone_session):
        assert session.setup.details["spin_wait"] is False
        options = session._session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    batch = images(1)
    np.testing.assert_allclose(
        served.run(batch, max_run=4, alone=True)[0],
        served.run(batch, max_run=4)[0],
        rtol=1e-5,
        atol=1e-6,
    )
    # Which session a run takes: the stand-in answers its input, the model four logits.
    served.alone_session = StandInSession()
    assert served.run(batch, max_run=4, alone=True)[0].shape == (1, 3, 32, 32)
    assert served.run(batch, max_run=4)[0].shape == (1, 4)
    (only,) = run_together(served, [batch], max_run=4, alone=True)
    assert only[0].shape == (1, 3, 32, 32)
    served.release()


def test_without_a_second_context_there_is_one_session(toy: ModelFile, tmp_path: Path) -> None:
    served = open_served_model(serving_input(toy), context(tmp_path), max_run=4)
    assert served.alone_session is None
    assert served.run(images(1), max_run=4, alone=True)[0].shape == (1, 4)


@pytest.mark.parametrize(
    ("images_per_request", "requests_in_replica", "alone"),
    [
        ([1], 1, True),  # one user, one image
        ([1], 0, True),  # a warm-up run, no request
        ([1], 2, False),  # another request is in the replica: the cores are shared
        ([2], 1, False),  # a batch: throughput, on the replica's share
        ([1, 1], 2, False),  # two requests run together
    ],
)
def test_which_runs_take_every_core(
    images_per_request: list[int], requests_in_replica: int, alone: bool
) -> None:
    tensors = [images(count) for count in images_per_request]
    assert runs_alone(tensors, requests_in_replica) is alone
