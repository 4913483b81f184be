"""The technical view's metadata: the report, the model and where it came from, the benchmark's
configuration, the machine and the engines' versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cvplatform.reports import formatting as fmt
from cvplatform.reports.document import Block, KeyValues, Table
from cvplatform.reports.facts import ReportFacts

_ENVIRONMENT_ROWS = (
    ("CPU", "cpu_model"),
    ("Logical cores", "logical_cores"),
    ("Physical cores", "physical_cores"),
    ("Memory (MB)", "memory_mb"),
    ("Operating system", "os"),
    ("Python", "python"),
    ("NumPy", "numpy"),
    ("ONNX Runtime", "onnxruntime"),
    ("TensorRT", "tensorrt"),
    ("GPU", "gpu_name"),
    ("GPU driver", "gpu_driver"),
    ("CUDA (driver)", "cuda_driver"),
)

_GPU_LABELS = ("GPU", "GPU driver", "CUDA (driver)")


def metadata_blocks(facts: ReportFacts) -> tuple[Block, ...]:
    blocks: list[Block] = [KeyValues(_identity(facts))]
    origin = _origin(facts)
    if origin:
        blocks.append(KeyValues(origin))
    blocks.append(KeyValues(_configuration(facts)))
    blocks.append(KeyValues(_environment(facts)))
    blocks.append(_engines(facts))
    return tuple(blocks)


def text(value: Any) -> str:
    """A stored value as a cell shows it; never ``repr`` for a float."""
    if value is None or value == "":
        return fmt.NOT_MEASURED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt.fixed(value, 2)
    if isinstance(value, list | tuple):
        return ", ".join(text(item) for item in value)
    return str(value)


def _identity(facts: ReportFacts) -> list[tuple[str, str]]:
    report, model = facts.report, facts.report.model
    shape = "x".join(str(side) for side in model.input_shape) if model.input_shape else None
    return [
        ("Report", report.report_id),
        ("Created at", fmt.timestamp_text(report.created_at)),
        ("Platform version", report.platform_version),
        ("Model", f"{model.name} ({model.id})"),
        ("Framework, task", f"{model.framework}, {model.task_type}"),
        ("Architecture", text(model.architecture)),
        ("Preset", text(model.preset)),
        ("Input shape (CxHxW)", text(shape)),
        ("Classes", text(model.num_classes)),
        ("Source SHA-256", model.source_sha256),
        ("ONNX SHA-256", text(model.onnx_sha256)),
        ("Parent model", text(model.parent_model_id)),
    ]


def _origin(facts: ReportFacts) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    dataset, training = facts.report.dataset, facts.report.training
    if dataset is not None:
        rows += [
            ("Dataset", f"{dataset.name} ({dataset.id})"),
            ("Dataset task", dataset.task_type),
            ("Dataset content hash", text(dataset.content_hash)),
            ("Samples, classes", f"{text(dataset.num_samples)}, {text(dataset.num_classes)}"),
        ]
    if training is not None:
        rows += [
            ("Training job", training.job_id),
            (
                "Split seed, validation share",
                f"{training.split_seed}, {fmt.percent(training.validation_split * 100)}%",
            ),
            ("Epochs", text(training.epochs)),
            ("Final validation accuracy", _fraction(training.final_accuracy)),
            ("Best validation accuracy", _fraction(training.best_val_accuracy)),
        ]
    return rows


def _fraction(value: float | None) -> str:
    # Training stores accuracy as a fraction; a negative one means no epoch was validated.
    return fmt.NOT_MEASURED if value is None or value < 0 else f"{fmt.percent(value * 100)}%"


def _configuration(facts: ReportFacts) -> list[tuple[str, str]]:
    benchmark = facts.report.benchmark
    request, result = benchmark.request, benchmark.result
    constraints = "; ".join(fmt.constraint_text(c.metric, c.op, c.value) for c in facts.constraints)
    shape = result.get("input_shape") or request.get("input_shape")
    duration = result.get("duration_s")
    return [
        ("Benchmark", benchmark.id),
        (
            "Started, finished",
            ", ".join(map(fmt.timestamp_text, (benchmark.started_at, benchmark.finished_at))),
        ),
        ("Duration", fmt.NOT_MEASURED if duration is None else f"{fmt.seconds(float(duration))} s"),
        ("Engines", ", ".join(facts.label(engine) for engine in facts.engines)),
        ("Batch sizes", ", ".join(str(size) for size in facts.batch_sizes)),
        (
            "Input shape (CxHxW)",
            "x".join(str(side) for side in shape) if shape else fmt.NOT_MEASURED,
        ),
        (
            "Warm-up, measured iterations",
            f"{text(request.get('warmup_iterations'))}, {text(request.get('iterations'))}",
        ),
        ("Seed", text(request.get("seed"))),
        (
            "CPU threads",
            text(request.get("cpu_threads")) if request.get("cpu_threads") else "library default",
        ),
        ("Constraints", constraints or "none"),
        (
            "Objective",
            "lowest p95 latency" if facts.objective == "latency" else "highest throughput",
        ),
        ("Percentile method", text(result.get("percentile_method"))),
        ("Accuracy measured on", text(result.get("accuracy_source"))),
    ]


def _environment(facts: ReportFacts) -> list[tuple[str, str]]:
    environment: Mapping[str, Any] = facts.report.benchmark.result.get("environment") or {}
    rows = [(label, text(environment.get(key))) for label, key in _ENVIRONMENT_ROWS]
    gpu = [value for label, value in rows if label in _GPU_LABELS]
    if len(set(gpu)) == 1 and gpu[0].startswith("unavailable"):
        # Without a GPU the three fields carry one reason: say it once.
        rows = [(label, value) for label, value in rows if label not in _GPU_LABELS[1:]]
    return rows


def _engines(facts: ReportFacts) -> Table:
    rows: list[Sequence[str]] = []
    for engine in facts.engines:
        info = facts.engine_info(engine)
        versions: Mapping[str, Any] = info.get("versions") or {}
        listed = ", ".join(
            f"{name} {versions[name]}" for name in sorted(versions) if name != "onnxruntime_build"
        )
        available = info.get("available")
        state = (
            "yes"
            if available is True
            else f"no: {info.get('reason') or 'unavailable'}"
            if available is False
            else fmt.NOT_MEASURED
        )
        rows.append(
            (
                facts.label(engine),
                text(info.get("precision")),
                text(info.get("device")),
                state,
                listed or fmt.NOT_MEASURED,
            )
        )
    return Table(
        columns=("Engine", "Precision", "Device", "Available here", "Versions"),
        rows=tuple(rows),
        align=("left",) * 5,
        caption="Engines and their library versions",
    )
