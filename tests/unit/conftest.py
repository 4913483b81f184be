"""Fixtures for running jobs in-process: a real store on a temporary SQLite file (no Ray) and the
settings of a platform whose data directory holds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cvplatform.config import Settings
from store.writer import StoreWriter
from tests.jobs_kit import WriterStore, settings_in


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WriterStore]:
    writer = StoreWriter(tmp_path / "data" / "cvp.db")
    yield WriterStore(writer)
    writer.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path / "data")
