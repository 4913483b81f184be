"""An ONNX model checked three ways and described: the ONNX checker (full check), shape
inference, and an ONNX Runtime session; then its inputs and outputs against its task type."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from cvplatform.errors import InvalidModel

TaskType = str


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    """Static sizes as ints, dynamic ones by their name (``batch``) or ``?``."""
    shape = value_info.type.tensor_type.shape
    return [
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?") for dim in shape.dim
    ]


def _tensor(value_info: onnx.ValueInfoProto) -> dict[str, Any]:
    element = value_info.type.tensor_type.elem_type
    return {
        "name": value_info.name,
        "dtype": onnx.helper.tensor_dtype_to_np_dtype(element).name if element else "unknown",
        "shape": _dims(value_info),
    }


def inspect_onnx(path: Path) -> dict[str, Any]:
    """Check the file and describe it.

    Returns:
        ``opset``, ``parameter_count``, ``op_types`` (count per type), ``inputs`` and ``outputs``
        (name, dtype, shape with dynamic dims named), ``ir_version``, ``producer``.

    Raises:
        InvalidModel: the checker, shape inference or ONNX Runtime refuses it.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (
        onnx.checker.ValidationError,
        onnx.onnx_cpp2py_export.shape_inference.InferenceError,
    ) as error:
        raise InvalidModel(f"the ONNX checker refused the model: {_first_line(error)}") from error
    except Exception as error:  # a truncated or foreign file fails while being parsed
        raise InvalidModel(f"not a readable ONNX model: {_first_line(error)}") from error
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    except Exception as error:
        raise InvalidModel(f"ONNX shape inference failed: {_first_line(error)}") from error
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise InvalidModel(f"ONNX Runtime cannot load the model: {_first_line(error)}") from error
    initializers = {tensor.name for tensor in model.graph.initializer}
    graph_inputs = [item for item in model.graph.input if item.name not in initializers]
    return {
        "ir_version": model.ir_version,
        "opset": max(
            (entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")),
            default=0,
        ),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "parameter_count": int(
            sum(
                np.prod(numpy_helper.to_array(tensor).shape, dtype=np.int64)
                for tensor in model.graph.initializer
            )
        ),
        "op_types": dict(sorted(Counter(node.op_type for node in model.graph.node).items())),
        "inputs": [_tensor(item) for item in graph_inputs],
        "outputs": [_tensor(item) for item in model.graph.output],
        "runtime_inputs": [item.name for item in session.get_inputs()],
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


def check_task(summary: dict[str, Any], task_type: TaskType) -> str:
    """Check the model's outputs against its task; returns how the head was recognized.

    Classification: one output ``[N, classes]``. Detection: a YOLO-style head (one output
    ``[N, 4 + classes, anchors]`` or ``[N, anchors, 4 + classes]``), or boxes/scores/classes
    outputs.

    Raises:
        InvalidModel: the outputs do not fit the task, with what they are.
    """
    outputs = summary["outputs"]
    shapes = [output["shape"] for output in outputs]
    if task_type == "classification":
        if len(outputs) == 1 and len(shapes[0]) == 2:
            return f"classifier with {shapes[0][1]} classes"
        raise InvalidModel(
            f"a classification model has one output [N, classes]; this one has {_describe(outputs)}"
            + (" — it looks like a detection model" if _looks_like_detection(outputs) else "")
        )
    if _looks_like_detection(outputs):
        return "YOLO-style head" if len(outputs) == 1 else "boxes/scores/classes outputs"
    raise InvalidModel(
        "a detection model has a YOLO-style output [N, 4 + classes, anchors] or boxes, scores and "
        f"classes outputs; this one has {_describe(outputs)}"
    )


def _looks_like_detection(outputs: list[dict[str, Any]]) -> bool:
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 3:
        return True
    names = " ".join(output["name"].lower() for output in outputs)
    return len(outputs) >= 3 and "box" in names and "score" in names


def _describe(outputs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{output['name']} {output['shape']}" for output in outputs) or "no outputs"
