"""What the store reads back: frozen, typed records, built from rows in one place.

The JSON columns (details, configs, requests, progress) are decoded here and encoded by the
writers with :func:`encode_json`, so no other module parses or writes them. A record's mappings are
the store's own copies: treat them as read-only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Generic, TypeVar

Row = dict[str, Any]
Item = TypeVar("Item")


def encode_json(value: Any) -> str:
    """How a JSON column is written (keys in the order given: figures keep their order)."""
    return json.dumps(value)


def decode_json(text: str | None, default: Any = None) -> Any:
    return default if text is None or text == "" else json.loads(text)


def as_dict(record: Any) -> dict[str, Any]:
    """A record as plain values (for a wire model, or a test's comparison)."""
    return asdict(record)


def record_fields(record_type: type) -> set[str]:
    return {field.name for field in fields(record_type)}


def _from_row(record_type: type[Item], row: Row, **derived: Any) -> Item:
    """A record from a row: its columns as they are, except the ``derived`` ones."""
    plain = {name: row[name] for name in record_fields(record_type) if name not in derived}
    return record_type(**plain, **derived)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file under the artifacts folder, as recorded in ``artifacts``."""

    artifact_id: int
    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SourceFile(FileRef):
    format: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    role: str
    created_at: str
    created_by: int | None

    @classmethod
    def from_row(cls, row: Row) -> UserRecord:
        return _from_row(cls, row)


@dataclass(frozen=True, slots=True)
class ModelRecord:
    id: str
    name: str
    description: str
    framework: str
    source_format: str
    task_type: str
    status: str
    status_reason: str | None
    architecture: str | None
    num_classes: int | None
    input_shape: list[int] | None
    preset: str | None
    weights_origin: str
    source_filename: str
    source: SourceFile
    onnx: FileRef | None
    details: Mapping[str, Any]
    parent_model_id: str | None
    created_at: str
    created_by: int | None
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> ModelRecord:
        """From a row of ``models`` joined with its source (``source_*``) and ONNX (``onnx_*``)
        artifacts."""
        onnx = None
        if row["onnx_artifact_id"] is not None:
            onnx = FileRef(
                row["onnx_artifact_id"], row["onnx_path"], row["onnx_sha256"], row["onnx_size"]
            )
        source = SourceFile(
            row["source_artifact_id"],
            row["source_path"],
            row["source_sha256"],
            row["source_size"],
            row["source_format"],
        )
        return _from_row(
            cls,
            row,
            source=source,
            onnx=onnx,
            details=decode_json(row["details"], {}),
            input_shape=decode_json(row["input_shape"]),
        )


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    id: str
    name: str
    description: str
    task_type: str
    status: str
    status_reason: str | None
    layout: str | None
    sample: str | None
    source_filename: str
    source_sha256: str
    source_size_bytes: int
    files_path: str
    content_hash: str | None
    num_samples: int | None
    num_classes: int | None
    class_names: list[str] | None
    total_bytes: int | None
    details: Mapping[str, Any]
    created_at: str
    created_by: int | None
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> DatasetRecord:
        return _from_row(
            cls,
            row,
            details=decode_json(row["details"], {}),
            class_names=decode_json(row["class_names"]),
        )


@dataclass(frozen=True, slots=True)
class PreprocessingRecord:
    id: str
    dataset_id: str
    cache_key: str
    config: Mapping[str, Any]
    status: str
    status_reason: str | None
    output_path: str
    split_counts: dict[str, int] | None
    seconds: float | None
    reuses: int
    created_at: str
    created_by: int | None
    finished_at: str | None

    @classmethod
    def from_row(cls, row: Row) -> PreprocessingRecord:
        return _from_row(
            cls,
            row,
            config=decode_json(row["config"], {}),
            split_counts=decode_json(row["split_counts"]),
        )


@dataclass(frozen=True, slots=True)
class PreprocessingClaim:
    """A cache key claimed: the run that holds it, and whether it was there already."""

    record: PreprocessingRecord
    cache_hit: bool


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    kind: str
    name: str
    status: str
    owner_id: int | None
    model_id: str | None
    dataset_id: str | None
    request: Mapping[str, Any]
    progress: Mapping[str, Any]
    result: Mapping[str, Any] | None
    error: str | None
    device: str | None
    cancel_requested_at: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    parent_id: str | None = None  # a GA trial's search

    @classmethod
    def from_row(cls, row: Row) -> JobRecord:
        return _from_row(
            cls,
            row,
            request=decode_json(row["request"], {}),
            progress=decode_json(row["progress"], {}),
            result=decode_json(row["result"]),
        )


@dataclass(frozen=True, slots=True)
class BenchmarkResultRecord:
    """One engine at one batch size of a benchmark job."""

    job_id: str
    engine: str
    batch_size: int
    status: str
    metrics: Mapping[str, float | None]
    intervals: Mapping[str, tuple[float, float]]
    details: Mapping[str, Any]
    error: str | None
    recorded_at: str

    @classmethod
    def from_row(cls, row: Row) -> BenchmarkResultRecord:
        return _from_row(
            cls,
            row,
            metrics=decode_json(row["metrics"], {}),
            intervals={k: tuple(v) for k, v in decode_json(row["intervals"], {}).items()},
            details=decode_json(row["details"], {}),
        )


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A report and the input every format of it is rendered from."""

    id: str
    benchmark_id: str
    model_id: str
    created_at: str
    input: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> ReportRecord:
        return _from_row(cls, row, input=decode_json(row["input"], {}))


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    """One page of records, and how many match in all."""

    items: list[Item]
    total: int
