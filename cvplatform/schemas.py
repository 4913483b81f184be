"""Pydantic models shared by the management API and the SDK: what goes over the wire."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["admin", "engineer", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "engineer", "viewer")

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"
# bcrypt reads at most 72 bytes of a password; a longer one would be silently cut, so it is refused.
PASSWORD_MAX_BYTES = 72
PASSWORD_MIN_CHARS = 8


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


Item = TypeVar("Item")


class Page(WireModel, Generic[Item]):
    """One page of a listing, and how many match in all."""

    items: list[Item]
    total: int
    limit: int
    offset: int


def check_password_length(password: str) -> str:
    if len(password) < PASSWORD_MIN_CHARS:
        raise ValueError(f"the password needs at least {PASSWORD_MIN_CHARS} characters")
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise ValueError(f"the password may hold at most {PASSWORD_MAX_BYTES} bytes (UTF-8)")
    return password


# --- errors -----------------------------------------------------------------------------------


class ErrorDetail(WireModel):
    code: str = Field(examples=["forbidden"])
    message: str = Field(examples=["role 'viewer' may not do 'users.manage'"])
    request_id: str = Field(examples=["5f1c2a9e0b7d4c3e8a6b1d2f3e4c5b6a"])
    fields: list[dict[str, Any]] | None = Field(
        None, description="for validation errors: one entry per rejected field"
    )


class ErrorBody(WireModel):
    error: ErrorDetail


# --- auth -----------------------------------------------------------------------------------


class LoginRequest(WireModel):
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery"])


class TokenResponse(WireModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name)
    expires_at: str = Field(description="ISO-8601 UTC time after which the token is refused")


class Principal(WireModel):
    """Who is calling: the user behind a token or an API key."""

    user_id: int
    username: str
    role: Role
    via: Literal["token", "api_key"]


class ApiKeyCreate(WireModel):
    name: str = Field(min_length=1, max_length=100, examples=["notebook"])


class ApiKeyOut(WireModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, enough to recognize it")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the full key; shown this once and never again")


# --- users ----------------------------------------------------------------------------------


class UserCreate(WireModel):
    username: str = Field(pattern=USERNAME_PATTERN, examples=["alice"])
    password: str = Field(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        description=f"{PASSWORD_MIN_CHARS} characters or more, at most {PASSWORD_MAX_BYTES} "
        "bytes in UTF-8 (bcrypt reads no further)",
        examples=["a long pass phrase"],
    )
    role: Role = Field(examples=["engineer"])

    _password_length = field_validator("password")(check_password_length)


class RoleChange(WireModel):
    role: Role


class UserOut(WireModel):
    id: int
    username: str
    role: Role
    created_at: str
    created_by: int | None


# --- audit, health, configuration ------------------------------------------------------------


class AuditEntry(WireModel):
    id: int
    at: str
    request_id: str | None
    user_id: int | None
    username: str | None
    action: str
    resource: str
    result: int = Field(
        description="the HTTP status the action ended with (0 for an operator's `cvp` command)"
    )
    detail: str | None


class Liveness(WireModel):
    status: Literal["ok"] = "ok"
    version: str


class ComponentStatus(WireModel):
    ok: bool
    detail: str


class Readiness(WireModel):
    status: Literal["ready", "unavailable"]
    store: ComponentStatus
    ray: ComponentStatus
    serve: ComponentStatus
    gpu: ComponentStatus
    # Reported, not required: presets and sample datasets still being registered after a start.
    startup: ComponentStatus


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


# --- augmentation, training and jobs ---------------------------------------------------------


class AugmentationConfig(BaseModel):
    """Applied at training time, deterministically for a given seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    horizontal_flip: float = Field(0.5, ge=0, le=1, description="probability of a flip")
    random_resized_crop: bool = True
    crop_scale: tuple[float, float] = Field((0.8, 1.0), description="area kept, min and max")
    brightness: float = Field(0.2, ge=0, le=1)
    contrast: float = Field(0.2, ge=0, le=1)
    saturation: float = Field(0.2, ge=0, le=1)


# --- preprocessing ---------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PreprocessConfig(BaseModel):
    """What a preprocessing run does; everything here is part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: tuple[int, int] = Field((224, 224), description="height, width after resizing")
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    frame_rate: float | None = Field(
        None, gt=0, description="video frames kept per second (None: every annotated frame)"
    )
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train, val, test")
    seed: int = Field(0, ge=0)
    augmentation: AugmentationConfig = AugmentationConfig()

    @model_validator(mode="after")
    def _check(self) -> PreprocessConfig:
        if not all(1 <= side <= 4096 for side in self.image_size):
            raise ValueError("image_size sides must be between 1 and 4096")
        if any(part < 0 for part in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split {self.split} must be three non-negative parts summing to 1")
        if self.split[0] == 0:
            raise ValueError("the train split cannot be empty")
        if any(value <= 0 for value in self.std):
            raise ValueError("std values must be positive")
        return self


class PreprocessRequest(PreprocessConfig):
    """The preprocessing config; ``model_id`` takes the image size from a model's input."""

    model_id: str | None = None


Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class Hyperparameters(WireModel):
    """A training run's settings; the defaults train a preset classifier on a small dataset."""

    learning_rate: float = Field(1e-3, gt=0, le=10)
    batch_size: int = Field(64, ge=1, le=4096)
    optimizer: Optimizer = "adam"
    weight_decay: float = Field(1e-4, ge=0, le=1)
    dropout: float = Field(0.1, ge=0, lt=1, description="before the classifier head")
    max_epochs: int = Field(10, ge=1, le=1000)
    validation_split: float = Field(0.1, gt=0, lt=0.5)
    image_size: tuple[int, int] | None = Field(
        None,
        description="height, width; default: the dataset's own size when all its images share "
        "one (between 32 and 640), else the model's input size",
    )
    augmentation: AugmentationConfig = AugmentationConfig()
    seed: int = Field(0, ge=0)


class TrainingRequest(WireModel):
    model_id: str = Field(min_length=1, max_length=64)
    dataset_id: str = Field(min_length=1, max_length=64)
    hyperparameters: Hyperparameters = Hyperparameters()


class JobOut(WireModel):
    id: str
    kind: str
    name: str = Field(description="what it is, as the Ray dashboard shows it too")
    status: JobStatus
    owner_id: int | None
    model_id: str | None
    dataset_id: str | None
    request: dict[str, Any]
    progress: dict[str, Any] = Field(description="the latest figures and the step counter")
    result: dict[str, Any] | None
    error: str | None
    device: str | None = Field(description="cuda:0 or cpu")
    cancel_requested_at: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


JobPage = Page[JobOut]


class AlertOut(WireModel):
    id: int
    at: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    message: str
    details: dict[str, Any]
    acknowledged_at: str | None
