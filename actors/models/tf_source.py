"""TensorFlow sources (the optional ``tensorflow`` extra): Keras HDF5 models, frozen GraphDefs and
zipped SavedModels, converted with tf2onnx and checked for parity against TensorFlow itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from actors.models import graph_inspection, parity
from cvplatform.archives import safe_extract
from cvplatform.errors import ConversionFailed, InvalidInput, InvalidModel

if TYPE_CHECKING:
    from actors.models.conversion import ConversionRequest

OPSET = 17
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def convert(request: ConversionRequest, onnx_path: Path, seed: int, batch: int) -> dict[str, Any]:
    from actors.models.conversion import checked_details, run_onnx

    converters = {
        "keras_h5": _from_keras_h5,
        "tf_frozen_graph": _from_frozen_graph,
        "tf_saved_model": _from_saved_model,
    }
    shape, reference_fn, output_order = converters[request.source_format](request, onnx_path, batch)
    sample = parity.seeded_input(shape, seed)
    details = checked_details(onnx_path, request.task_type)
    reference = reference_fn(sample)
    converted = run_onnx(onnx_path, sample)
    ordered = [reference[name] for name in output_order] if output_order else reference
    details["parity"] = parity.compare(ordered, converted, seed, shape).as_details()
    details["exporter"] = f"tf2onnx, opset {OPSET}"
    return details


def _shape(known: list[int | None], given: list[int] | None, batch: int, what: str) -> list[int]:
    if given:
        return [batch, *given]
    if any(size is None for size in known[1:]):
        raise InvalidModel(f"{what} has dynamic sizes {known}; give input_shape (e.g. 224,224,3)")
    return [batch, *[int(size) for size in known[1:] if size is not None]]


def _from_keras_h5(
    request: ConversionRequest, onnx_path: Path, batch: int
) -> tuple[list[int], Any, None]:
    import keras
    import tensorflow as tf
    import tf2onnx

    try:
        # safe_mode refuses Lambda layers, whose code would otherwise be unmarshalled and run.
        model = keras.models.load_model(request.source_path, compile=False, safe_mode=True)
    except Exception as error:
        raise InvalidModel(f"not a loadable Keras model: {str(error)[:300]}") from error
    if len(model.inputs) != 1:
        raise InvalidModel(
            f"the Keras model has {len(model.inputs)} inputs; one image input is supported"
        )
    shape = _shape(
        list(model.inputs[0].shape), request.input_shape, batch, "the Keras model's input"
    )
    spec = (tf.TensorSpec([None, *shape[1:]], tf.float32, name="input"),)
    function = tf.function(lambda image: model(image, training=False))
    try:
        tf2onnx.convert.from_function(
            function, input_signature=spec, opset=OPSET, output_path=str(onnx_path)
        )
    except Exception as error:
        raise ConversionFailed(
            f"tf2onnx could not convert the Keras model: {str(error)[:400]}"
        ) from error

    def reference(sample: np.ndarray) -> list[np.ndarray]:
        result = model(sample, training=False)
        return [
            np.asarray(item) for item in (result if isinstance(result, list | tuple) else [result])
        ]

    return shape, reference, None


def _from_frozen_graph(
    request: ConversionRequest, onnx_path: Path, batch: int
) -> tuple[list[int], Any, None]:
    import tensorflow as tf
    import tf2onnx

    graph_def = graph_inspection.check_frozen_graph_file(request.source_path)
    try:
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
        )
        inputs = [wrapped.graph.get_tensor_by_name(name) for name in request.graph_inputs]
        outputs = [wrapped.graph.get_tensor_by_name(name) for name in request.graph_outputs]
    except Exception as error:
        raise InvalidModel(
            f"not a frozen GraphDef with those tensor names: {str(error)[:300]}"
        ) from error
    if len(inputs) != 1:
        raise InvalidModel("one input tensor (an image batch) is supported")
    shape = _shape(inputs[0].shape.as_list(), request.input_shape, batch, "the graph's input")
    pruned = wrapped.prune(feeds=inputs, fetches=outputs)
    try:
        tf2onnx.convert.from_graph_def(
            graph_def,
            input_names=request.graph_inputs,
            output_names=request.graph_outputs,
            opset=OPSET,
            output_path=str(onnx_path),
        )
    except Exception as error:
        raise ConversionFailed(
            f"tf2onnx could not convert the graph: {str(error)[:400]}"
        ) from error

    def reference(sample: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(item) for item in pruned(tf.constant(sample))]

    return shape, reference, None


def _from_saved_model(
    request: ConversionRequest, onnx_path: Path, batch: int
) -> tuple[list[int], Any, list[str]]:
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    unpacked = onnx_path.parent / "saved_model"
    try:
        safe_extract(request.source_path, unpacked, request.extract_limits)
    except InvalidInput as error:
        raise InvalidModel(error.message) from error
    roots = [Path(folder) for folder, _, files in os.walk(unpacked) if "saved_model.pb" in files]
    if len(roots) != 1:
        raise InvalidModel("the ZIP must hold exactly one SavedModel (one saved_model.pb)")
    graph_inspection.check_saved_model_file(roots[0] / "saved_model.pb")
    try:
        graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
            str(roots[0]),
            None,
            None,
            tag=["serve"],
            signatures=["serving_default"],
            return_tensors_to_rename=True,
        )
        signature = tf.saved_model.load(str(roots[0])).signatures["serving_default"]
    except Exception as error:
        raise InvalidModel(
            f"not a loadable SavedModel with a serving_default signature: {str(error)[:300]}"
        ) from error
    input_specs = list(signature.structured_input_signature[1].items())
    if len(input_specs) != 1:
        raise InvalidModel("the serving signature must take one input (an image batch)")
    input_key, input_spec = input_specs[0]
    shape = _shape(input_spec.shape.as_list(), request.input_shape, batch, "the signature's input")
    try:
        model_proto, _ = tf2onnx.convert.from_graph_def(
            graph_def,
            input_names=inputs,
            output_names=outputs,
            tensors_to_rename=renames,
            opset=OPSET,
            output_path=str(onnx_path),
        )
    except Exception as error:
        raise ConversionFailed(
            f"tf2onnx could not convert the SavedModel: {str(error)[:400]}"
        ) from error
    output_order = [output.name for output in model_proto.graph.output]

    def reference(sample: np.ndarray) -> dict[str, np.ndarray]:
        result = signature(**{input_key: tf.constant(sample)})
        return {name: np.asarray(value) for name, value in result.items()}

    return shape, reference, output_order
