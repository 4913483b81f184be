"""The forbidden operations, family by family, found by reading graphs (nothing is executed):
TensorFlow GraphDefs and SavedModels as protobuf, TorchScript as its IR, ONNX external data."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import Any

import pytest

# torchvision before TensorFlow: imported after it, torchvision crashes the process (their native
# libraries clash), and these tests load TensorFlow into the test process to build its graphs.
import torchvision  # noqa: F401

from actors.models import graph_inspection, unsafe_ops
from actors.models.unsafe_ops import FAMILIES, Family
from cvplatform.errors import UnsafeModel
from tests import models_kit

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
needs_tensorflow = pytest.mark.skipif(not HAS_TENSORFLOW, reason="the tensorflow extra")


def _graph(*ops: str) -> Any:
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    graph_def.node.add(name="input", op="Placeholder")
    for index, op in enumerate(ops):
        graph_def.node.add(name=f"n{index}", op=op, input=["input"])
    return graph_def


def _refused(check: Any, *args: Any) -> str:
    with pytest.raises(UnsafeModel) as refused:
        check(*args)
    assert refused.value.code == "unsafe_model" and refused.value.status == 422
    return refused.value.message


# --- TensorFlow: one test per family, then where the ops hide -----------------------------------

TENSORFLOW_EXAMPLES = [
    (unsafe_ops.FILE_READS, "ReadFile", "can read server files"),
    (unsafe_ops.FILE_READS, "TFRecordDatasetV2", "can read server files"),
    (unsafe_ops.FILE_WRITES, "WriteFile", "can write server files"),
    (unsafe_ops.FILE_WRITES, "CreateSummaryFileWriter", "can write server files"),
    (unsafe_ops.DEBUG_OUTPUTS, "DebugIdentityV2", "can send tensors to files or servers"),
    (unsafe_ops.PYTHON_CALLS, "PyFunc", "runs Python code on the server"),
    (unsafe_ops.PYTHON_CALLS, "EagerPyFunc", "runs Python code on the server"),
    (unsafe_ops.CHECKPOINTS, "RestoreV2", "saves or restores checkpoint files"),
    (unsafe_ops.CHECKPOINTS, "MergeV2Checkpoints", "saves or restores checkpoint files"),
    (unsafe_ops.NETWORK, "RpcCall", "can reach the network"),
    (unsafe_ops.NETWORK, "DataServiceDatasetV4", "can reach the network"),
]


@needs_tensorflow
@pytest.mark.parametrize(("family", "op", "reason"), TENSORFLOW_EXAMPLES)
def test_each_tensorflow_family_is_refused_naming_the_op(
    family: Family, op: str, reason: str
) -> None:
    assert op in family.tensorflow
    message = _refused(graph_inspection.check_graph_def, _graph("Conv2D", op))
    assert message.startswith(f"the graph uses {op}, which {reason}")


def test_every_family_lists_tensorflow_ops_and_the_issue_names_them() -> None:
    listed = {op for family in FAMILIES for op in family.tensorflow}
    named = {"ReadFile", "WriteFile", "PyFunc", "SaveV2", "RestoreV2", "MatchingFiles"}
    assert named <= listed
    assert all(family.tensorflow for family in FAMILIES)
    assert unsafe_ops.refusal("ReadFile", unsafe_ops.FILE_READS).message.startswith(
        "the graph uses ReadFile, which can read server files"
    )


@needs_tensorflow
def test_every_listed_tensorflow_op_is_refused_and_ordinary_ops_are_not() -> None:
    for family in FAMILIES:
        for op in family.tensorflow:
            assert op in _refused(graph_inspection.check_graph_def, _graph(op))
    graph_inspection.check_graph_def(_graph("Conv2D", "MatMul", "Relu", "Print", "ReadVariableOp"))


@needs_tensorflow
def test_attributes_decide_for_print_and_protobuf_ops() -> None:
    to_file, to_stderr = _graph("PrintV2"), _graph("PrintV2")
    to_file.node[1].attr["output_stream"].s = b"file:///srv/cvp/jwt-secret"
    to_stderr.node[1].attr["output_stream"].s = b"stderr"
    assert "PrintV2 (to a file)" in _refused(graph_inspection.check_graph_def, to_file)
    graph_inspection.check_graph_def(to_stderr)
    from_file, in_memory = _graph("DecodeProtoV2"), _graph("DecodeProtoV2")
    from_file.node[1].attr["descriptor_source"].s = b"/srv/cvp/descriptors.bin"
    in_memory.node[1].attr["descriptor_source"].s = b"local://"
    assert "descriptor file" in _refused(graph_inspection.check_graph_def, from_file)
    graph_inspection.check_graph_def(in_memory)


@needs_tensorflow
def test_an_op_inside_a_function_the_graph_calls_is_found() -> None:
    graph_def = _graph("StatefulPartitionedCall")
    graph_def.node[1].attr["f"].func.name = "outer"
    outer = graph_def.library.function.add()
    outer.signature.name = "outer"
    loop = outer.node_def.add(name="loop", op="While")
    loop.attr["body"].func.name = "body"
    body = graph_def.library.function.add()
    body.signature.name = "body"
    body.node_def.add(name="steal", op="ReadFile")
    assert "ReadFile" in _refused(graph_inspection.check_graph_def, graph_def)


def _saved_model(folder: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((folder / "saved_model.pb").read_bytes())
    return saved_model


def _unzipped(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
    return folder


@needs_tensorflow
def test_a_saved_models_own_saver_passes_but_save_ops_in_its_serving_function_do_not(
    tmp_path: Path,
) -> None:
    folder = _unzipped(models_kit.saved_model_zip(tmp_path / "sm.zip"), tmp_path / "sm")
    saved_model = _saved_model(folder)
    functions = saved_model.meta_graphs[0].graph_def.library.function
    assert any(node.op == "SaveV2" for f in functions for node in f.node_def)  # the saver's
    graph_inspection.check_saved_model(saved_model)
    by_name = {function.signature.name: function for function in functions}
    wrapper = next(f for f in functions if "signature_wrapper" in f.signature.name)
    called = next(node.attr["f"].func.name for node in wrapper.node_def if "f" in node.attr)
    by_name[called].node_def.add(name="exfiltrate", op="SaveV2")
    assert "SaveV2" in _refused(graph_inspection.check_saved_model, saved_model)


@needs_tensorflow
def test_functions_that_run_when_a_saved_model_loads_are_checked(tmp_path: Path) -> None:
    folder = _unzipped(models_kit.saved_model_zip(tmp_path / "sm.zip"), tmp_path / "sm")
    saved_model = _saved_model(folder)
    meta_graph = saved_model.meta_graphs[0]
    initializer = meta_graph.graph_def.library.function.add()
    initializer.signature.name = "__inference__initialize_7"
    initializer.node_def.add(name="table", op="InitializeTableFromTextFileV2")
    nodes = meta_graph.object_graph_def.nodes
    resource = nodes.add()
    resource.resource.SetInParent()
    resource.children.add(local_name="_initialize", node_id=len(nodes))
    nodes.add().bare_concrete_function.concrete_function_name = initializer.signature.name
    assert "InitializeTableFromTextFileV2" in _refused(
        graph_inspection.check_saved_model, saved_model
    )


@needs_tensorflow
def test_the_uploads_of_the_attack_are_found_in_their_files(tmp_path: Path) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_bytes(b"s" * 64)
    frozen, _, _ = models_kit.secret_reading_frozen_graph(tmp_path / "leak.pb", secret)
    assert "ReadFile" in _refused(graph_inspection.check_frozen_graph_file, frozen)
    writer = models_kit.file_writing_saved_model_zip(tmp_path / "w.zip", tmp_path / "pwned")
    folder = _unzipped(writer, tmp_path / "writer")
    assert "WriteFile" in _refused(
        graph_inspection.check_saved_model_file, folder / "saved_model.pb"
    )
    assert not (tmp_path / "pwned").exists()
    good, _, _ = models_kit.frozen_graph(tmp_path / "good.pb")
    graph_inspection.check_frozen_graph_file(good)


# --- TorchScript ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("aten::from_file", "can read server files"),
        ("debugprims::load_tensor", "can read server files"),
        ("aten::save", "can write server files"),
        ("prim::PythonOp", "runs Python code on the server"),
        ("c10d::allreduce_", "can reach the network"),
        ("symm_mem::nvshmem_put", "can reach the network"),
    ],
)
def test_each_torchscript_family_is_refused_naming_the_op(kind: str, reason: str) -> None:
    message = _refused(unsafe_ops.check_torchscript_op, kind)
    assert message.startswith(f"the graph uses {kind}, which {reason}")
    unsafe_ops.check_torchscript_op("aten::conv2d", ["Tensor"])


def test_a_distributed_store_object_is_refused() -> None:
    made = ["__torch__.torch.classes.dist_c10d.FileStore"]
    assert "dist_c10d" in _refused(unsafe_ops.check_torchscript_op, "prim::CreateObject", made)


def test_from_file_is_found_in_a_loaded_torchscript_forward(tmp_path: Path) -> None:
    import torch

    secret = tmp_path / "jwt-secret"
    secret.write_bytes(b"k" * 64)
    path = models_kit.secret_reading_torchscript(tmp_path / "leak.pt", secret, 64)
    loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    assert "aten::from_file" in _refused(graph_inspection.check_torchscript, loaded)


def test_calls_in_submodules_functions_and_loops_are_inlined_and_found(tmp_path: Path) -> None:
    import torch

    from tests.unit import torchscript_kit

    for builder in (torchscript_kit.in_an_exported_submodule_method, torchscript_kit.in_a_loop):
        path = tmp_path / f"{builder.__name__}.pt"
        torch.jit.save(torch.jit.script(builder()), str(path))
        loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
        assert "aten::from_file" in _refused(graph_inspection.check_torchscript, loaded), builder
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(models_kit.tiny_classifier()), str(plain))
    graph_inspection.check_torchscript(torch.jit.load(str(plain)))  # type: ignore[no-untyped-call]


# --- ONNX ----------------------------------------------------------------------------------------


def test_an_onnx_upload_with_external_data_is_refused(tmp_path: Path) -> None:
    import onnx

    path = models_kit.onnx_with_external_data(tmp_path / "ext.onnx", "../../jwt-secret")
    model = onnx.load(str(path), load_external_data=False)
    message = _refused(graph_inspection.check_onnx_external_data, model)
    assert "'../../jwt-secret'" in message and "can read server files" in message
    plain = onnx.load(str(models_kit.onnx_classifier(tmp_path / "plain.onnx")))
    graph_inspection.check_onnx_external_data(plain)
