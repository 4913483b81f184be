"""Toy models for the model tests, built on the spot (no weights are downloaded anywhere)."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np


def tiny_classifier(classes: int = 4) -> object:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    ).eval()


def onnx_classifier(path: Path, classes: int = 4, size: int = 32) -> Path:
    return _export_classifier(tiny_classifier(classes), path, size)


def _export_classifier(model: object, path: Path, size: int) -> Path:
    """An image classifier as ONNX: input ``input`` (N, 3, size, size), output ``logits``."""
    import torch

    torch.onnx.export(
        model,
        (torch.zeros(1, 3, size, size),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def onnx_detector(path: Path) -> Path:
    """An ONNX model with a YOLO-shaped output [N, 4 + classes, anchors]."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 7, 3, padding=1)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.conv(images).flatten(2)

    torch.onnx.export(
        Head().eval(),
        (torch.zeros(1, 3, 16, 16),),
        str(path),
        input_names=["images"],
        output_names=["output0"],
        dynamic_axes={"images": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def onnx_missing_input(path: Path) -> Path:
    """A graph whose node reads a tensor that nothing defines."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Add", ["input", "ghost"], ["output"])
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def resnet18_state_dict(path: Path, classes: int = 10) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None, num_classes=classes).state_dict(), path)
    return path


def resnet18_torchscript(path: Path, classes: int = 10) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=classes).eval()
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def yolo_state_dict(path: Path, classes: int = 3) -> Path:
    import torch

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    torch.save(DetectionModel("yolov8n.yaml", nc=classes, verbose=False).state_dict(), path)
    return path


class _Payload:
    """Unpickling this runs `touch <marker>`: what a malicious model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.marker}",))


def malicious_pickle(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"weight": torch.zeros(2), "exploit": _Payload(marker)}, path)
    return path


def raw_pickle(path: Path, marker: Path) -> Path:
    """The same attack as a plain (non-zip) pickle stream."""
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


def _keras_model() -> object:
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3), name="image"),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )


def keras_h5(path: Path) -> Path:
    _keras_model().save(str(path))  # type: ignore[attr-defined]
    return path


def _tf_cnn() -> tuple[object, object]:
    import tensorflow as tf

    tf.random.set_seed(1)
    kernel = tf.Variable(tf.random.normal((3, 3, 3, 8), stddev=0.2))
    dense = tf.Variable(tf.random.normal((8, 6), stddev=0.2))

    @tf.function(input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32, name="input")])
    def cnn(images: object) -> object:
        features = tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME"))
        return tf.identity(tf.matmul(tf.reduce_mean(features, axis=[1, 2]), dense), name="logits")

    module = tf.Module()
    module.kernel, module.dense, module.serve = kernel, dense, cnn
    return module, cnn


def frozen_graph(path: Path) -> tuple[Path, list[str], list[str]]:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    _, cnn = _tf_cnn()
    frozen = convert_variables_to_constants_v2(cnn.get_concrete_function())  # type: ignore[attr-defined]
    tf.io.write_graph(frozen.graph.as_graph_def(), str(path.parent), path.name, as_text=False)
    return path, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs]


def saved_model_zip(path: Path) -> Path:
    import tensorflow as tf

    module, cnn = _tf_cnn()
    folder = path.with_suffix("")
    tf.saved_model.save(
        module, str(folder), signatures={"serving_default": cnn.get_concrete_function()}
    )  # type: ignore[attr-defined]
    shutil.make_archive(str(folder), "zip", str(folder))
    return path


def zip_bomb(path: Path, unpacked_bytes: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("saved_model/variables/huge.bin", b"\0" * unpacked_bytes)
        archive.writestr("saved_model/saved_model.pb", b"")
    return path


def random_bytes(path: Path, size: int = 4096) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(size))
    return path


# --- malicious and misbehaving models: each tries to reach the server -------------------------


def _secret_reader() -> type:
    import torch
    from torch import nn

    class SecretReader(nn.Module):
        """A classifier whose forward adds the bytes of a server file to its output (it takes
        any input of at least 4 values per sample)."""

        def __init__(self, secret: str, size: int) -> None:
            super().__init__()
            self.secret = secret
            self.size = size
            self.head = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            stolen = torch.from_file(self.secret, False, self.size, dtype=torch.uint8)
            return self.head(x.flatten(1)[:, :4]) + stolen[:4].to(torch.float32)

    return SecretReader


def secret_reading_torchscript(path: Path, secret: Path, size: int) -> Path:
    """What the attacker of issue 10 uploaded: ``torch.from_file(<data dir>/jwt-secret)``."""
    import torch

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(_secret_reader()(str(secret), size).eval()), str(path))
    return path


def _endless() -> type:
    import torch
    from torch import nn

    class Endless(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            total = x
            step = 0
            while step >= 0:  # never ends: the wall-clock limit has to stop it
                total = total + 1.0
                step += 1
            return total

    return Endless


def endless_torchscript(path: Path) -> Path:
    import torch

    torch.jit.save(torch.jit.script(_endless()()), str(path))
    return path


def secret_reading_frozen_graph(path: Path, secret: Path) -> tuple[Path, list[str], list[str]]:
    """A frozen graph whose output adds ``tf.io.read_file(secret)`` (a ReadFile op)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="input")])
    def leak(features: object) -> object:
        stolen = tf.io.decode_raw(tf.io.read_file(str(secret)), tf.uint8)[:4]
        return tf.identity(features + tf.cast(stolen, tf.float32), name="logits")

    frozen = convert_variables_to_constants_v2(leak.get_concrete_function())  # type: ignore[attr-defined]
    tf.io.write_graph(frozen.graph.as_graph_def(), str(path.parent), path.name, as_text=False)
    return path, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs]


def file_writing_saved_model_zip(path: Path, target: Path) -> Path:
    """A zipped SavedModel whose serving function writes ``target`` (a WriteFile op)."""
    import tensorflow as tf

    weights = tf.Variable(tf.ones((4, 4)))

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="input")])
    def serve(features: object) -> object:
        tf.io.write_file(str(target), "written by an uploaded model")
        return tf.matmul(features, weights)

    module = tf.Module()
    module.weights, module.serve = weights, serve
    folder = path.with_suffix("")
    tf.saved_model.save(
        module, str(folder), signatures={"serving_default": serve.get_concrete_function()}
    )  # type: ignore[attr-defined]
    shutil.make_archive(str(folder), "zip", str(folder))
    return path


def onnx_with_external_data(path: Path, location: str) -> Path:
    """An ONNX classifier whose weight says its bytes are in another file, ``location``."""
    from onnx import TensorProto, helper

    weight = helper.make_tensor("weight", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["logits"])],
        "leak",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def _hungry() -> type:
    import torch
    from torch import nn

    class Hungry(nn.Module):
        def __init__(self, values: int) -> None:
            super().__init__()
            self.values = values

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.ones(self.values).sum()  # float32: 4 bytes a value

    return Hungry


def memory_hungry_torchscript(path: Path, gigabytes: int) -> Path:
    import torch

    torch.jit.save(torch.jit.script(_hungry()(gigabytes * 1024**3 // 4)), str(path))
    return path


def onnx_slow_classifier(path: Path, classes: int = 4, size: int = 160) -> Path:
    """A classifier that takes tens of milliseconds per image on a CPU (wide 3x3 convolutions at
    full resolution): slow enough for a flood to queue and a tiny timeout to pass."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, classes),
    ).eval()
    return _export_classifier(model, path, size)
