"""Models, datasets, resumable uploads and preprocessing runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from cvplatform.schemas.base import Page, WireModel

# --- models ---------------------------------------------------------------------------------

TaskType = Literal["classification", "detection"]
Framework = Literal["pytorch", "tensorflow", "onnx"]
ModelStatus = Literal["uploaded", "converting", "ready", "invalid", "failed"]


class ModelAccepted(WireModel):
    id: str
    status: ModelStatus
    url: str = Field(description="where to follow the model's status")


class StoredFileOut(WireModel):
    filename: str | None = None
    format: str | None = None
    sha256: str
    size_bytes: int


class TensorOut(WireModel):
    name: str
    dtype: str
    shape: list[int | str] = Field(description="static sizes, dynamic ones by name")


class ModelOut(WireModel):
    id: str
    name: str
    description: str
    framework: Framework
    task_type: TaskType
    status: ModelStatus
    status_reason: str | None = Field(description="why a model is invalid or failed")
    architecture: str | None
    num_classes: int | None
    input_shape: list[int] | None
    is_preset: bool
    preset: str | None
    weights_origin: str = Field(description="'random-init', 'uploaded', or a weights file's sha256")
    source: StoredFileOut
    onnx: StoredFileOut | None
    parameter_count: int | None = Field(
        description="the source model's parameters (the ONNX graph's own count is in details)"
    )
    inputs: list[TensorOut]
    outputs: list[TensorOut]
    parity: dict[str, Any] | None = Field(
        description="max abs diff and cosine similarity of ONNX vs. the source on a seeded input"
    )
    details: dict[str, Any]
    parent_model_id: str | None
    created_at: str
    created_by: int | None
    updated_at: str


ModelPage = Page[ModelOut]


# --- datasets -------------------------------------------------------------------------------

DatasetStatus = Literal["uploaded", "validating", "ready", "invalid", "failed"]


class DatasetAccepted(WireModel):
    id: str
    status: DatasetStatus
    url: str


UploadKind = Literal["model", "dataset", "dataset_metadata"]
UPLOAD_ID_PATTERN = r"^[0-9a-f]{32}$"
# The id of a finished resumable upload, as ``POST /api/v1/uploads`` gave it.
UploadId = Annotated[str, Field(pattern=UPLOAD_ID_PATTERN, examples=["0f" * 16])]


class UploadOut(WireModel):
    """A resumable upload (``POST /api/v1/uploads``); its bytes go to ``url`` with ``PATCH``."""

    id: str
    url: str
    kind: UploadKind
    filename: str
    length: int
    offset: int
    expires_at: str = Field(description="ISO-8601 UTC time it is deleted at unless bytes arrive")


class DatasetOut(WireModel):
    id: str
    name: str
    description: str
    task_type: TaskType
    status: DatasetStatus
    status_reason: str | None
    layout: str | None = Field(
        description="class_folders, images_csv, videos_csv, yolo_images or import_csv"
    )
    is_sample: bool
    sample: str | None
    source: StoredFileOut
    content_hash: str | None = Field(description="of the samples' contents, not of file names")
    num_samples: int | None
    num_classes: int | None
    class_names: list[str] | None
    class_counts: dict[str, int] | None
    image_size_range: dict[str, list[int] | None] | None
    total_bytes: int | None
    rejected: list[dict[str, str]] = Field(description="files left out, each with the reason")
    rejected_count: int
    created_at: str
    created_by: int | None
    updated_at: str


DatasetPage = Page[DatasetOut]


class PreprocessingOut(WireModel):
    id: str
    dataset_id: str
    cache_key: str
    cache_hit: bool = Field(description="true when an earlier run with this key is reused")
    status: Literal["running", "ready", "failed"]
    status_reason: str | None
    config: dict[str, Any]
    split_counts: dict[str, int] | None
    seconds: float | None
    reuses: int
    created_at: str
    finished_at: str | None
