"""Preprocessing configuration, training requests, jobs and alerts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cvplatform.schemas.base import Page, WireModel

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
    parent_id: str | None = Field(None, description="a GA trial's search (its job id)")


JobPage = Page[JobOut]


class AlertOut(WireModel):
    id: int
    at: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    message: str
    details: dict[str, Any]
    acknowledged_at: str | None
