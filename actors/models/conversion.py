"""From an uploaded file to a checked ONNX model, as plain code: the conversion task calls this.

Every path ends in one of three ways: a result (ONNX file, details), ``InvalidModel`` (the upload
is not a model of its kind: status ``invalid``), or ``ConversionFailed`` (status ``failed``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from actors.models import graph_inspection, onnx_inspect, parity
from cvplatform.archives import ExtractLimits
from cvplatform.errors import ConversionFailed, InvalidModel

PARITY_SEED = 0
PARITY_BATCH = 2  # not 1: a wrongly fixed batch axis shows up at once


@dataclass(frozen=True)
class ConversionRequest:
    source_path: Path
    source_format: str
    task_type: str
    architecture: str | None = None
    num_classes: int | None = None
    input_shape: list[int] | None = None
    graph_inputs: list[str] = field(default_factory=list)
    graph_outputs: list[str] = field(default_factory=list)
    extract_limits: ExtractLimits = field(
        default_factory=lambda: ExtractLimits(max_total_bytes=4 * 1024**3, max_ratio=50.0)
    )


@dataclass(frozen=True)
class ConversionResult:
    onnx_path: Path | None  # None: the upload is the ONNX model itself
    details: dict[str, Any]


def run_onnx(path: Path, sample: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [
        np.asarray(output) for output in session.run(None, {session.get_inputs()[0].name: sample})
    ]


def convert(request: ConversionRequest, workdir: Path) -> ConversionResult:
    started = time.perf_counter()
    if request.source_format == "onnx":
        details = _check_onnx_upload(request)
        onnx_path = None
    elif request.source_format in ("torchscript", "torch_state_dict"):
        onnx_path = workdir / "model.onnx"
        details = _convert_torch(request, onnx_path)
    else:
        from actors.models import tf_source

        onnx_path = workdir / "model.onnx"
        details = tf_source.convert(request, onnx_path, PARITY_SEED, PARITY_BATCH)
    details["conversion_seconds"] = round(time.perf_counter() - started, 3)
    return ConversionResult(onnx_path, details)


def checked_details(onnx_path: Path, task_type: str) -> dict[str, Any]:
    summary = onnx_inspect.inspect_onnx(onnx_path)
    head = onnx_inspect.check_task(summary, task_type)
    classes = summary["outputs"][0]["shape"][-1] if task_type == "classification" else None
    batch = (
        summary["inputs"][0]["shape"][0]
        if summary["inputs"] and summary["inputs"][0]["shape"]
        else None
    )
    details = {"summary": summary, "task_head": head, "dynamic_batch": isinstance(batch, str)}
    if isinstance(classes, int):
        details["num_classes"] = classes  # what the model really outputs, to fill the record
    return details


def _check_onnx_upload(request: ConversionRequest) -> dict[str, Any]:
    import onnx

    try:
        model = onnx.load(str(request.source_path), load_external_data=False)
    except Exception:  # not ONNX at all: the checker below says so in its own words
        model = None
    if model is not None:
        graph_inspection.check_onnx_external_data(model)
    details = checked_details(request.source_path, request.task_type)
    details["parity"] = _runtime_against_reference(request, details["summary"])
    return details


def _runtime_against_reference(
    request: ConversionRequest, summary: dict[str, Any]
) -> dict[str, Any]:
    """An ONNX upload has no other framework to compare with: compare ONNX Runtime, which will
    run it, with the ONNX reference evaluator, which implements the spec, on a seeded input.

    A difference is reported (``within_tolerance: false``), not fatal: the reference evaluator is
    a slow cross-check, not the engine the model is served with.
    """
    dims = summary["inputs"][0]["shape"][1:] if summary["inputs"] else []
    shape = [1, *(request.input_shape or dims)]
    if any(not isinstance(size, int) for size in shape):
        return {"not_available": f"the input has dynamic sizes {dims}; give input_shape to check"}
    sample = parity.seeded_input(shape, PARITY_SEED)
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(onnx.load(str(request.source_path)))
        reference = [
            np.asarray(out) for out in evaluator.run(None, {summary["inputs"][0]["name"]: sample})
        ]
    except Exception as error:  # an operator the reference evaluator does not implement
        return {"not_available": f"the ONNX reference evaluator could not run it: {error}"[:300]}
    figures: dict[str, Any] = {"compared_with": "ONNX reference evaluator"}
    try:
        figures |= parity.compare(
            reference, run_onnx(request.source_path, sample), PARITY_SEED, shape
        ).as_details()
        figures["within_tolerance"] = True
    except ConversionFailed as error:
        figures |= {"within_tolerance": False, "difference": error.message}
    return figures


def _convert_torch(request: ConversionRequest, onnx_path: Path) -> dict[str, Any]:
    from actors.models import torch_source

    if request.source_format == "torchscript":
        module = torch_source.load_torchscript(request.source_path)
        graph_inspection.check_torchscript(module)  # before any of its methods runs
    else:
        if not request.architecture:
            raise InvalidModel(
                "a state dict needs the field architecture (a torchvision builder such as "
                "resnet18, or an ultralytics yaml such as yolov8n.yaml)"
            )
        state = torch_source.load_state_dict(request.source_path)
        num_classes = request.num_classes or torch_source.infer_num_classes(state)
        if request.architecture.endswith((".yaml", ".yml")):
            num_classes = request.num_classes  # the yaml and its weights say it themselves
        module = torch_source.build_architecture(
            request.architecture, request.task_type, num_classes
        )
        torch_source.load_into(module, state, request.architecture)
    module, dynamic_batch, output_names = torch_source.exportable(module, request.task_type)
    given = request.input_shape
    if not given and request.source_format == "torchscript":
        # Nothing says what a TorchScript model takes: its forward pass is the only witness.
        given = torch_source.assume_input_shape(module, request.task_type)
    input_shape = torch_source.example_shape(module, request.task_type, given)
    shape = [PARITY_BATCH if dynamic_batch else 1, *input_shape]
    sample = parity.seeded_input(shape, PARITY_SEED)
    torch_source.export_onnx(module, sample, onnx_path, dynamic_batch, output_names)
    details = checked_details(onnx_path, request.task_type)
    reference = torch_source.run_module(module, sample)
    details["parity"] = parity.compare(
        reference, run_onnx(onnx_path, sample), PARITY_SEED, shape
    ).as_details()
    details["exporter"] = f"torch.onnx (TorchScript-based), opset {torch_source.OPSET}"
    # The ONNX graph folds batch norms into convolutions; the source's count is the familiar one.
    details["source_parameter_count"] = sum(p.numel() for p in module.parameters())
    if not request.input_shape:
        details |= _assumed_input_shape(input_shape)
    return details


def _assumed_input_shape(input_shape: list[int]) -> dict[str, Any]:
    """What the details say when the input size was assumed, not given: the export fixes it."""
    dims = ",".join(map(str, input_shape))
    return {
        "input_shape": list(input_shape),
        "input_shape_assumed": True,
        "input_shape_note": (
            f"no input_shape was given: assumed {dims} (C,H,W), and the ONNX model takes that "
            "size only; upload it again with input_shape set if the model expects another"
        ),
    }
