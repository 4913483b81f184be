"""Reading an upload's graphs for forbidden operations (:mod:`actors.models.unsafe_ops`) before
anything of it runs.

TensorFlow graphs are read as protobuf messages and TorchScript as its IR: nothing is executed to
inspect them. TorchScript is the exception: ``torch.jit.load`` runs ``__setstate__``, so it is
loaded inside the sandboxed conversion process (:mod:`actors.models.sandbox`), which is the second
line of defence whatever this module misses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from actors.models.unsafe_ops import FILE_READS, check_tensorflow_op, check_torchscript_op, refusal
from cvplatform.errors import InvalidModel

# --- TensorFlow ----------------------------------------------------------------------------------


def _functions_in_attr(value: Any) -> Iterator[str]:
    """Names of the functions an ``AttrValue`` refers to (``f`` of a call, branches, bodies)."""
    if value.HasField("func"):
        yield value.func.name
        for nested in value.func.attr.values():
            yield from _functions_in_attr(nested)
    if value.HasField("list"):
        for function in value.list.func:
            yield function.name
            for nested in function.attr.values():
                yield from _functions_in_attr(nested)


def _called_functions(node: Any, library: Mapping[str, Any]) -> Iterator[str]:
    if node.op in library:  # a library function called as an op of its own
        yield node.op
    for value in node.attr.values():
        yield from _functions_in_attr(value)


class _Library:
    """A GraphDef's function library, checked function by function, each once."""

    def __init__(self, functions: Iterable[Any]) -> None:
        self.functions = {function.signature.name: function for function in functions}
        self.checked: set[str] = set()

    def check_calls(self, node: Any) -> None:
        for name in _called_functions(node, self.functions):
            self.check_function(name)

    def check_function(self, name: str) -> None:
        if name in self.checked or name not in self.functions:
            return
        self.checked.add(name)
        for node in self.functions[name].node_def:
            check_tensorflow_op(node.op, node.attr)
            self.check_calls(node)


def check_graph_def(graph_def: Any) -> None:
    """A frozen graph: every node and every function of its library.

    Raises:
        UnsafeModel: the first forbidden op found.
    """
    library = _Library(graph_def.library.function)
    for node in graph_def.node:
        check_tensorflow_op(node.op, node.attr)
    for name in library.functions:
        library.check_function(name)


def _node_name(tensor: str) -> str:
    """``^name`` (a control input), ``name:1`` and ``name`` all name the node ``name``."""
    return tensor.lstrip("^").split(":")[0]


def _reachable_nodes(graph_def: Any, roots: Iterable[str]) -> list[Any]:
    by_name = {node.name: node for node in graph_def.node}
    pending, seen = [_node_name(root) for root in roots], set()
    found = []
    while pending:
        name = pending.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        node = by_name[name]
        found.append(node)
        pending.extend(_node_name(tensor) for tensor in node.input)
    return found


# TF1 SavedModels name the ops run at load in these collections (node names).
_LOAD_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "table_initializer", "init_op")
_LOAD_SIGNATURE = "__saved_model_init_op"
# Children of a restored resource whose functions run when the SavedModel is loaded.
_RESOURCE_LOAD_FUNCTIONS = ("_create_resource", "_initialize")


def _signature_roots(meta_graph: Any, signature: str) -> list[str]:
    roots = []
    for name in (signature, _LOAD_SIGNATURE):
        if name in meta_graph.signature_def:
            roots += [t.name for t in meta_graph.signature_def[name].outputs.values()]
    for collection in _LOAD_COLLECTIONS:
        if collection in meta_graph.collection_def:
            roots += list(meta_graph.collection_def[collection].node_list.value)
    return roots


def _object_function_names(saved_object: Any) -> list[str]:
    kind = saved_object.WhichOneof("kind")
    if kind == "function":
        return list(saved_object.function.concrete_functions)
    if kind == "bare_concrete_function":
        return [saved_object.bare_concrete_function.concrete_function_name]
    return []


def _load_time_functions(object_graph: Any) -> list[str]:
    """Functions that loading the SavedModel calls: resource initializers, and the traced save
    and restore functions of objects that checkpoint themselves."""
    nodes = list(object_graph.nodes)
    node_ids: list[int] = []
    for saved_object in nodes:
        if saved_object.WhichOneof("kind") == "resource":
            node_ids += [
                child.node_id
                for child in saved_object.children
                if child.local_name in _RESOURCE_LOAD_FUNCTIONS
            ]
        for saveable in saved_object.saveable_objects.values():
            node_ids += [saveable.save_function, saveable.restore_function]
    return [name for node_id in node_ids for name in _object_function_names(nodes[node_id])]


def check_saved_model(saved_model: Any, signature: str = "serving_default") -> None:
    """A SavedModel, every meta graph: what ``signature`` computes, what it calls, and what
    loading runs. The saver's own functions (SaveV2, RestoreV2), which every SavedModel carries
    and which the conversion never calls, are not part of that.

    Raises:
        UnsafeModel: the first forbidden op found.
    """
    for meta_graph in saved_model.meta_graphs:
        graph_def = meta_graph.graph_def
        library = _Library(graph_def.library.function)
        for node in _reachable_nodes(graph_def, _signature_roots(meta_graph, signature)):
            check_tensorflow_op(node.op, node.attr)
            library.check_calls(node)
        for name in _load_time_functions(meta_graph.object_graph_def):
            library.check_function(name)


def check_frozen_graph_file(path: Path) -> Any:
    """Parse a frozen graph (protobuf only, nothing imported into TensorFlow) and check it.

    Returns:
        The ``GraphDef``, for the conversion to use.

    Raises:
        InvalidModel: not a GraphDef; UnsafeModel: a forbidden op.
    """
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as error:  # protobuf's DecodeError, or a file that is not one
        raise InvalidModel(f"not a frozen GraphDef: {str(error)[:300]}") from error
    check_graph_def(graph_def)
    return graph_def


def check_saved_model_file(path: Path, signature: str = "serving_default") -> None:
    """Parse ``saved_model.pb`` (protobuf only) and check it.

    Raises:
        InvalidModel: not a SavedModel; UnsafeModel: a forbidden op.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(path.read_bytes())
    except Exception as error:
        raise InvalidModel(f"not a readable saved_model.pb: {str(error)[:300]}") from error
    check_saved_model(saved_model, signature)


# --- TorchScript and ONNX ------------------------------------------------------------------------


def _graph_nodes(nodes: Iterable[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        for block in node.blocks():  # the bodies of if and loop
            yield from _graph_nodes(block.nodes())


def check_torchscript(module: Any) -> None:
    """Every method of every submodule of a loaded TorchScript module, with the functions and
    class methods it calls inlined (``__setstate__`` and exported methods included).

    Raises:
        UnsafeModel: the first forbidden op found.
    """
    for submodule in module.modules():
        methods = submodule._c
        for name in methods._method_names():
            graph = methods._get_method(name).inlined_graph
            for node in _graph_nodes(graph.nodes()):
                check_torchscript_op(node.kind(), [str(out.type()) for out in node.outputs()])


def _onnx_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initializers, constants in attributes, and subgraphs'."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _onnx_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _onnx_tensors(subgraph)


def check_onnx_external_data(model: Any) -> None:
    """An uploaded ``.onnx`` is one file: a tensor kept in an outside file would be read from
    the server (load the model with ``load_external_data=False`` to check it).

    Raises:
        UnsafeModel: the first tensor that points outside the file.
    """
    from onnx import TensorProto

    for tensor in _onnx_tensors(model.graph):
        if tensor.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise refusal(f"external data for {tensor.name!r} (file {location!r})", FILE_READS)
