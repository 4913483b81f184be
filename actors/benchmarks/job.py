"""The benchmark job on the kernel, holding one GPU slot: every engine at every batch size.

Each combination is stored as soon as it is measured (a cancellation keeps what was measured); an
engine this machine cannot run is stored ``unavailable`` with the reason, one that fails ``failed``
with its message, and the rest go on. At the end the constraints are judged and an engine selected,
and the decision with each step of its reasoning becomes the job's result.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from actors.benchmarks.evaluation import (
    EvaluationData,
    Scores,
    evaluation_data,
    predict_all,
    score,
)
from actors.benchmarks.preparation import (
    REFERENCE_ENGINE,
    calibration_for,
    first_line,
    give_back_freed_memory,
    ordered_engines,
)
from actors.jobs.registry import Job, JobCancelled, Outcome, end_tracked_job
from actors.jobs.reporter import JobReporter
from cvplatform.benchmarking.constraints import Constraint
from cvplatform.benchmarking.inputs import seeded_inputs
from cvplatform.benchmarking.measure import Timings, time_runs
from cvplatform.benchmarking.plan import check_batch_sizes, onnx_input_dims, resolve_input_shape
from cvplatform.benchmarking.resources import ResourceSampler, environment
from cvplatform.benchmarking.selection import Candidate, select
from cvplatform.benchmarking.stats import PERCENTILE_METHOD, Interval, summarize
from cvplatform.engines import engine_for
from cvplatform.engines.base import (
    Engine,
    EngineContext,
    EngineFailed,
    ModelFile,
    Session,
)
from cvplatform.gpu import GpuReport, probe_gpu
from cvplatform.schemas import BenchmarkRequest
from store import queries

log = logging.getLogger("cvp.jobs")


@dataclass
class BenchmarkRun:
    """One benchmark job's state while it runs."""

    reporter: JobReporter
    request: BenchmarkRequest
    model_file: ModelFile
    input_shape: tuple[int, int, int]
    gpu: GpuReport
    evaluation: EvaluationData | None
    accuracy_note: str
    combinations: int
    done: int = 0
    reference: np.ndarray | None = None
    reference_accuracy: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)
    rss_before_open_mb: float = 0.0

    @property
    def job_id(self) -> str:
        return self.reporter.job.subject_id

    def store(
        self,
        engine: str,
        batch_size: int,
        status: str,
        error: str | None = None,
        metrics: dict[str, float | None] | None = None,
        intervals: dict[str, tuple[float, float]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.reporter.ops.record_benchmark_result(
            job_id=self.job_id,
            engine=engine,
            batch_size=batch_size,
            status=status,
            metrics=metrics or {},
            intervals=intervals or {},
            details=details or {},
            error=error,
        )
        self.done += 1
        self.reporter.event(
            "result",
            {"engine": engine, "batch_size": batch_size, "status": status, "error": error},
            combinations_done=self.done,
            combinations=self.combinations,
        )

    # --- one engine ---------------------------------------------------------------------------

    def run_engine(self, engine: Engine) -> None:
        availability = engine.availability()
        self.engines[engine.name] = {
            "label": engine.label,
            "precision": engine.precision,
            "device": engine.device,
            "available": availability.available,
            "reason": availability.reason,
            "versions": engine.versions(),
        }
        if not availability.available:
            self.unavailable[engine.name] = availability.reason or "unavailable"
            for batch_size in self.request.batch_sizes:
                self.store(engine.name, batch_size, "unavailable", availability.reason)
            return
        self.reporter.phase("opening", engine=engine.name)
        # What the process holds before the engine exists: its own memory is measured above it.
        give_back_freed_memory()
        self.rss_before_open_mb = psutil.Process().memory_info().rss / 2**20
        try:
            session = engine.open(self.model_file, self.input_shape, self.request.batch_sizes)
        except EngineFailed as error:
            self.fail_engine(engine.name, str(error))
            return
        except Exception as error:
            self.fail_engine(
                engine.name, f"the engine could not load the model: {first_line(error)}"
            )
            return
        try:
            scores, accuracy_note = self.accuracy(engine.name, session)
            for batch_size in self.request.batch_sizes:
                self.measure(engine.name, session, batch_size, scores, accuracy_note)
        finally:
            session.release()

    def score_reference(self, engine: Engine) -> None:
        """FP32 ONNX Runtime's accuracy, when it is not among the engines measured: the others'
        accuracy drop and agreement are against it."""
        session = engine.open(self.model_file, self.input_shape, self.request.batch_sizes)
        try:
            self.accuracy(engine.name, session)
        finally:
            session.release()

    def fail_engine(self, engine: str, reason: str) -> None:
        self.engines[engine]["error"] = reason
        for batch_size in self.request.batch_sizes:
            self.store(engine, batch_size, "failed", reason)

    def accuracy(self, engine: str, session: Session) -> tuple[Scores | None, str]:
        if self.evaluation is None:
            return None, self.accuracy_note
        self.reporter.phase("accuracy", engine=engine)
        largest = max(self.request.batch_sizes)
        try:
            outputs = predict_all(
                lambda batch: session.run(batch)[0], self.evaluation.images, largest
            )
        except Exception as error:
            return None, f"not measured: the validation pass failed: {first_line(error)}"
        if engine == REFERENCE_ENGINE and self.reference is None:
            self.reference = outputs
        reference = None if engine == REFERENCE_ENGINE else self.reference
        scores = score(self.evaluation, outputs, reference)
        if engine == REFERENCE_ENGINE:
            self.reference_accuracy = scores.accuracy_percent
        return scores, self.accuracy_note

    # --- one engine at one batch size ---------------------------------------------------------

    def measure(
        self,
        engine: str,
        session: Session,
        batch_size: int,
        scores: Scores | None,
        accuracy_note: str,
    ) -> None:
        request = self.request
        inputs = seeded_inputs(request.seed, batch_size, self.input_shape)
        self.reporter.phase("measuring", engine=engine, batch_size=batch_size)

        def progress(done: int, total: int) -> None:
            self.reporter.progress(
                engine=engine, batch_size=batch_size, iteration=done, iterations=total
            )

        sampler = ResourceSampler(self.gpu)
        try:
            timings = time_runs(
                lambda: session.run(inputs),
                request.warmup_iterations,
                request.iterations,
                should_stop=self.reporter.should_stop,
                on_progress=progress,
                window=sampler,
            )
        except Exception as error:
            self.store(engine, batch_size, "failed", f"the run failed: {first_line(error)}")
            return
        status = "cancelled" if timings.stopped else "completed"
        if not timings.samples_ms:
            self.store(engine, batch_size, status, "cancelled before a measured run")
            raise JobCancelled
        self.record(engine, session, batch_size, timings, sampler, scores, accuracy_note, status)
        if timings.stopped:
            raise JobCancelled

    def record(
        self,
        engine: str,
        session: Session,
        batch_size: int,
        timings: Timings,
        sampler: ResourceSampler,
        scores: Scores | None,
        accuracy_note: str,
        status: str,
    ) -> None:
        stats = summarize(timings.samples_ms, batch_size, self.request.seed)
        usage = sampler.usage()
        metrics: dict[str, float | None] = {
            **stats.metrics(),
            **usage.metrics(),
            # The engine's footprint, not the process's (which holds the platform's libraries
            # and what earlier engines left to the allocator): comparable between engines.
            "host_memory_mb": max(0.0, usage.peak_host_memory_mb - self.rss_before_open_mb),
            "setup_s": session.setup.seconds,
            "cold_ms": timings.cold_ms,
            **self.accuracy_metrics(engine, scores),
        }
        intervals = {name: (i.low, i.high) for name, i in stats.intervals().items()}
        details = {
            "setup": {
                "kind": session.setup.kind,
                "seconds": session.setup.seconds,
                **dict(session.setup.details),
            },
            "cold_run_ms": timings.cold_ms,
            "warmup_iterations": len(timings.warmup_ms),
            "measured_iterations": len(timings.samples_ms),
            "percentile_method": PERCENTILE_METHOD,
            "resources": {
                "samples": usage.samples,
                "process_peak_rss_mb": usage.peak_host_memory_mb,
                "rss_before_engine_mb": self.rss_before_open_mb,
                "gpu_unavailable_reason": usage.gpu_unavailable_reason,
            },
            "accuracy": {"source": accuracy_note, "reference": REFERENCE_ENGINE},
        }
        self.store(engine, batch_size, status, None, metrics, intervals, details)
        if status == "completed":
            self.candidates.append(
                Candidate(
                    engine, batch_size, metrics, {k: Interval(*v) for k, v in intervals.items()}
                )
            )

    def accuracy_metrics(self, engine: str, scores: Scores | None) -> dict[str, float | None]:
        if scores is None:
            return {"accuracy_percent": None, "accuracy_drop_pp": None, "agreement_percent": None}
        reference = self.reference_accuracy
        drop = None if reference is None else reference - scores.accuracy_percent
        agreement = 100.0 if engine == REFERENCE_ENGINE else scores.agreement_percent
        return {
            "accuracy_percent": scores.accuracy_percent,
            "accuracy_drop_pp": drop,
            "agreement_percent": agreement,
        }


def run_benchmark(job: Job, reporter: JobReporter) -> Outcome:
    """Measure, judge and select; returns the environment, the verdicts and the selection."""
    started = time.perf_counter()
    request = BenchmarkRequest.model_validate(job.request)
    model = reporter.read(queries.model_by_id, request.model_id, "model")
    if model.status != "ready" or model.onnx is None:
        return Outcome.failed(
            f"model {model.id} is {model.status}: only a ready model can be benchmarked"
        )
    dims = onnx_input_dims(model.details.get("summary"))
    shape = resolve_input_shape(request.input_shape, dims)
    check_batch_sizes(request.batch_sizes, dims)
    gpu = probe_gpu()
    reporter.ops.set_job_device(job_id=job.subject_id, device="cuda:0" if gpu.available else "cpu")
    evaluation, accuracy_note = evaluation_data(reporter, model, shape)
    settings = reporter.settings
    context = EngineContext(
        cache_dir=settings.artifacts_dir / "engines",
        gpu=gpu,
        threads=request.cpu_threads,
        calibration=calibration_for(evaluation, request.seed, shape),
        gpu_memory_limit_mb=settings.gpu_memory_limit_mb,
    )
    names = ordered_engines(request.engines)
    run = BenchmarkRun(
        reporter,
        request,
        ModelFile(settings.artifacts_dir / model.onnx.path, model.onnx.sha256),
        shape,
        gpu,
        evaluation,
        accuracy_note,
        combinations=len(names) * len(request.batch_sizes),
    )
    if evaluation is not None and REFERENCE_ENGINE not in names:
        run.score_reference(engine_for(REFERENCE_ENGINE, context))
    for name in names:
        run.run_engine(engine_for(name, context))
    constraints = [Constraint(c.metric, c.op, c.value) for c in request.constraints]
    selection = select(run.candidates, constraints, request.objective, run.unavailable)
    return Outcome(
        "completed",
        result={
            "environment": environment(gpu),
            "input_shape": list(shape),
            "engines": run.engines,
            "accuracy_source": accuracy_note,
            "constraints": [str(c) for c in constraints],
            "objective": request.objective,
            "percentile_method": PERCENTILE_METHOD,
            "selection": selection.as_dict(),
            "selected": selection.selected,
            "combinations": run.combinations,
            "duration_s": round(time.perf_counter() - started, 2),
        },
    )


def end_benchmark(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    """The job ends with its outcome; a completed one gets its report, kept with the data it is
    built from. A report that cannot be made is logged: the measurements stay either way."""
    end_tracked_job(job, outcome, reporter)
    if outcome.status != "completed":
        return
    try:
        reporter.ops.create_report(benchmark_id=job.subject_id, report_id=uuid.uuid4().hex)
    except Exception:
        log.exception("%s: its report could not be made", job.name)
