"""What every training loop shares: hooks, figures, the optimizer, the device, the stop rules."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from actors.jobs.registry import JobCancelled
from cvplatform.errors import CvpError
from cvplatform.schemas import Hyperparameters


class TrainingFailed(CvpError):
    """The run cannot go on (the loss diverged, the batch does not fit); the message says why."""

    code = "training_failed"


class TrainingCancelled(JobCancelled):
    """The job was asked to stop; the loop stopped between two batches."""


class Hooks(Protocol):
    def on_batch(self, epoch: int, batch: int, batches: int, step: int) -> None: ...

    def on_epoch(self, figures: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool: ...


@dataclass
class Outcome:
    """The run's result: figures per epoch, the best epoch and its weights."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None
    images_seen: int = 0
    train_seconds: float = 0.0

    def keep_if_best(self, figures: dict[str, Any], model: nn.Module) -> None:
        self.epochs.append(figures)
        if figures["val_accuracy"] > self.best_val_accuracy:
            self.best_val_accuracy = figures["val_accuracy"]
            self.best_epoch = figures["epoch"]
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def result(self) -> dict[str, Any]:
        last = self.epochs[-1]
        return {
            "final_accuracy": last["val_accuracy"],
            "final_loss": last["val_loss"],
            "final_train_loss": last["train_loss"],
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "epochs_run": len(self.epochs),
            "images_per_s": round(self.images_seen / self.train_seconds, 1)
            if self.train_seconds
            else None,
        }


def make_optimizer(parameters: Any, hp: Hyperparameters) -> torch.optim.Optimizer:
    choices: dict[str, Callable[..., torch.optim.Optimizer]] = {
        "sgd": lambda: torch.optim.SGD(
            parameters, lr=hp.learning_rate, momentum=0.9, weight_decay=hp.weight_decay
        ),
        "adam": lambda: torch.optim.Adam(
            parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay
        ),
        "adamw": lambda: torch.optim.AdamW(
            parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay
        ),
        "rmsprop": lambda: torch.optim.RMSprop(
            parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay
        ),
    }
    return choices[hp.optimizer]()


@dataclass(frozen=True)
class Device:
    name: str  # "cuda:0" or "cpu"
    mixed_precision: bool

    @property
    def torch(self) -> torch.device:
        return torch.device(self.name)


def pick_device(memory_limit_mb: int) -> Device:
    """The GPU if there is one (with the process capped at ``memory_limit_mb``), else the CPU."""
    if not torch.cuda.is_available():
        return Device("cpu", mixed_precision=False)
    total_mb = torch.cuda.get_device_properties(0).total_memory / 2**20
    torch.cuda.set_per_process_memory_fraction(min(1.0, memory_limit_mb / total_mb), 0)
    return Device("cuda:0", mixed_precision=True)


def check_loss(loss: torch.Tensor, epoch: int, batch: int) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingFailed(
            f"the loss became {value} at epoch {epoch}, batch {batch}: training diverged; "
            "lower the learning rate (or check the data)"
        )
    return value


def epoch_figures(
    epoch: int,
    hp: Hyperparameters,
    train_loss: float,
    validation: tuple[float, float],
    images: int,
    seconds: float,
    clock: Clock,
    step: int,
    **extra: float | None,
) -> dict[str, Any]:
    """The figures every loop reports for a finished epoch (``validation``: loss, accuracy)."""
    val_loss, val_accuracy = validation
    return {
        "epoch": epoch,
        "epochs": hp.max_epochs,
        "train_loss": round(train_loss, 6),
        "val_loss": round(val_loss, 6),
        "val_accuracy": round(val_accuracy, 6),
        "images_per_s": round(images / seconds, 1),
        "elapsed_s": round(clock.elapsed(), 2),
        "eta_s": round(clock.eta(epoch, hp.max_epochs), 2),
        "step": step,
        **{key: None if value is None else round(value, 6) for key, value in extra.items()},
    }


class Clock:
    """Seconds since start, and the ETA from the epochs done so far."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self, epochs_done: int, epochs_total: int) -> float:
        return self.elapsed() / epochs_done * (epochs_total - epochs_done) if epochs_done else 0.0
