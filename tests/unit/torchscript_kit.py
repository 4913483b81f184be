"""TorchScript modules that hide ``torch.from_file`` where a look at ``forward`` alone would miss it
(TorchScript compiles from source files, so they live in a module of their own)."""

from __future__ import annotations

import torch
from torch import nn


def _read_secret(size: int) -> torch.Tensor:
    return torch.from_file("/srv/cvp/jwt-secret", False, size, dtype=torch.uint8)


@torch.jit.script
class _Reader:
    def __init__(self, size: int) -> None:
        self.size = size

    def read(self) -> torch.Tensor:
        return _read_secret(self.size)


class _Inner(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1

    @torch.jit.export
    def peek(self, x: torch.Tensor) -> torch.Tensor:
        return x + _Reader(4).read().to(torch.float32)


class _Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = _Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class _Looping(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in range(3):
            if step == 2:
                x = x + _read_secret(4).to(torch.float32)
        return x


def in_an_exported_submodule_method() -> nn.Module:
    """``forward`` is clean; an exported method of a submodule reads through a script class."""
    return _Outer()


def in_a_loop() -> nn.Module:
    """The read sits in a branch inside a loop, in a function that ``forward`` calls."""
    return _Looping()
