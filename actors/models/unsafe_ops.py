"""The operations an uploaded graph may not use, in one place, and the decision for one op.

A TensorFlow graph or a TorchScript archive is a program: a ``ReadFile`` or ``torch.from_file``
in it runs as the platform's user and can put ``jwt-secret`` into the exported model. Such
graphs are refused before they run (:mod:`actors.models.graph_inspection` walks them), with a
message that names the op: "the graph uses ReadFile, which can read server files".

No TensorFlow or PyTorch import: the lists are read by tests and documentation without either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cvplatform.errors import UnsafeModel


@dataclass(frozen=True)
class Family:
    """Operations refused for one reason; ``reason`` completes "the graph uses X, which ..."."""

    name: str
    reason: str
    tensorflow: frozenset[str]
    torchscript: frozenset[str] = frozenset()


FILE_READS = Family(
    "file reads",
    "can read server files",
    frozenset(
        {
            "ReadFile",
            "MatchingFiles",
            "ImmutableConst",  # memory-maps the file its attribute names
            "FileSystemSetConfiguration",
            "InitializeTableFromTextFile",
            "InitializeTableFromTextFileV2",
            "GenerateVocabRemapping",
            "RecordInput",
            # readers
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "WholeFileReader",
            "WholeFileReaderV2",
            "LMDBReader",
            # datasets that open files
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "TextLineDataset",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
            "MatchingFilesDataset",
            "ExperimentalMatchingFilesDataset",
            "LoadDataset",
            "SnapshotChunkDataset",
            "SnapshotDatasetReader",
            "SnapshotNestedDatasetReader",
            "ListSnapshotChunksDataset",
        }
    ),
    frozenset({"aten::from_file", "debugprims::load_tensor"}),
)
FILE_WRITES = Family(
    "file writes",
    "can write server files",
    frozenset(
        {
            "WriteFile",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SaveDataset",
            "SaveDatasetV2",
            "DistributedSave",
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "CalibrationStatisticsSaver",
            # summary writers
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
            "SummaryWriter",
            "StatsAggregatorSetSummaryWriter",
            "WriteSummary",
            "WriteScalarSummary",
            "WriteHistogramSummary",
            "WriteImageSummary",
            "WriteAudioSummary",
            "WriteGraphSummary",
            "WriteRawProtoSummary",
            "ImportEvent",
            "FlushSummaryWriter",
            "CloseSummaryWriter",
        }
    ),
    frozenset({"aten::save"}),
)
DEBUG_OUTPUTS = Family(
    "debug outputs",
    "can send tensors to files or servers",
    frozenset(
        {
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
            "DebugNumericSummaryV2",
            "Copy",
            "CopyHost",
        }
    ),
)
PYTHON_CALLS = Family(
    "Python calls",
    "runs Python code on the server",
    frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"}),
    frozenset({"prim::PythonOp", "prim::IgnoredPythonOp"}),
)
CHECKPOINTS = Family(
    "save and restore",
    "saves or restores checkpoint files on the server",
    frozenset(
        {
            "Save",
            "SaveSlices",
            "SaveV2",
            "Restore",
            "RestoreSlice",
            "RestoreV2",
            "DTensorRestoreV2",
            "MergeV2Checkpoints",
            "LoadAndRemapMatrix",
        }
    ),
)
NETWORK = Family(
    "network",
    "can reach the network",
    frozenset(
        {
            "RemoteCall",
            "Send",
            "Recv",
            "_Send",
            "_Recv",
            "_HostSend",
            "_HostRecv",
            "DataServiceDataset",
            "DataServiceDatasetV2",
            "DataServiceDatasetV3",
            "DataServiceDatasetV4",
            "RegisterDataset",
            "RegisterDatasetV2",
            "RpcServer",
            "RpcServerStart",
            "RpcServerRegister",
            "RpcClient",
            "RpcCall",
            "RpcCheckStatus",
            "RpcGetValue",
            "DeleteRpcFutureResource",
            "CollectiveReduce",
            "CollectiveReduceV2",
            "CollectiveReduceV3",
            "CollectiveReduceScatterV2",
            "CollectiveGather",
            "CollectiveGatherV2",
            "CollectiveBcastSend",
            "CollectiveBcastSendV2",
            "CollectiveBcastRecv",
            "CollectiveBcastRecvV2",
            "CollectiveAllToAllV2",
            "CollectiveAllToAllV3",
            "CollectiveInitializeCommunicator",
            "CollectiveAssignGroupV2",
            "NcclAllReduce",
            "NcclBroadcast",
            "NcclReduce",
        }
    ),
)
FAMILIES = (FILE_READS, FILE_WRITES, DEBUG_OUTPUTS, PYTHON_CALLS, CHECKPOINTS, NETWORK)

# Whole TorchScript namespaces of distributed communication (process groups, stores, NVSHMEM).
TORCHSCRIPT_NETWORK_NAMESPACES = frozenset(
    {"c10d", "_c10d_functional", "_c10d_functional_autograd", "symm_mem", "dist_c10d"}
)
# Where an attribute, not the op, decides: PrintV2 to a file, protobuf descriptors from a file.
_PROTO_OPS = frozenset({"DecodeProtoV2", "EncodeProto"})
_IN_MEMORY_DESCRIPTORS = ("local://", "bytes://")

_TENSORFLOW: dict[str, Family] = {op: family for family in FAMILIES for op in family.tensorflow}
_TORCHSCRIPT: dict[str, Family] = {op: family for family in FAMILIES for op in family.torchscript}


def refusal(op: str, family: Family) -> UnsafeModel:
    return UnsafeModel(
        f"the graph uses {op}, which {family.reason}; a model that touches the server's files, "
        "network or Python is refused"
    )


# --- TensorFlow ----------------------------------------------------------------------------------


def _text_attr(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs.get(name)
    return value.s.decode(errors="replace") if value is not None else ""


def check_tensorflow_op(op: str, attrs: Mapping[str, Any]) -> None:
    """Refuse one node (``NodeDef``) by its op, or by the attribute that sends it to a file.

    Raises:
        UnsafeModel: naming the op and what it can do.
    """
    family = _TENSORFLOW.get(op)
    if family is not None:
        raise refusal(op, family)
    if op == "PrintV2" and _text_attr(attrs, "output_stream").startswith("file://"):
        raise refusal("PrintV2 (to a file)", FILE_WRITES)
    if op in _PROTO_OPS:
        source = _text_attr(attrs, "descriptor_source")
        if source and not source.startswith(_IN_MEMORY_DESCRIPTORS):
            raise refusal(f"{op} (with a descriptor file)", FILE_READS)


# --- TorchScript ---------------------------------------------------------------------------------


def check_torchscript_op(kind: str, output_types: Iterable[str] = ()) -> None:
    """Refuse one TorchScript IR node by its kind (``aten::from_file``), its namespace, or the
    distributed objects it makes.

    Raises:
        UnsafeModel: naming the op and what it can do.
    """
    family = _TORCHSCRIPT.get(kind)
    if family is not None:
        raise refusal(kind, family)
    if kind.partition("::")[0] in TORCHSCRIPT_NETWORK_NAMESPACES:
        raise refusal(kind, NETWORK)
    for type_name in output_types:
        if any(f"torch.classes.{space}." in type_name for space in TORCHSCRIPT_NETWORK_NAMESPACES):
            raise refusal(type_name, NETWORK)
