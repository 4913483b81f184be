"""An uploaded ``.h5`` is told HDF5 by its signature where the HDF5 specification puts it (at 0,
or after a user block of 512, 1024, 2048... bytes), read a few bytes at a time, never whole."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from actors.models.formats import (
    HDF5_SIGNATURE,
    detect_source_format,
    hdf5_signature_offsets,
    is_hdf5,
)
from cvplatform.errors import InvalidModel


@pytest.mark.parametrize("user_block", [0, 512, 1024, 4096])
def test_a_real_hdf5_file_is_recognised_with_or_without_a_user_block(
    tmp_path: Path, user_block: int
) -> None:
    path = tmp_path / "model.h5"
    with h5py.File(path, "w", userblock_size=user_block) as written:
        written.create_dataset("weights", data=np.arange(10, dtype=np.float32))
    assert is_hdf5(path)
    assert detect_source_format(path, ".h5", has_graph_names=False) == "keras_h5"


def test_a_fake_h5_with_the_signature_is_taken_as_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(HDF5_SIGNATURE + bytes(64))
    assert detect_source_format(path, ".h5", has_graph_names=False) == "keras_h5"


@pytest.mark.parametrize("offset", [1, 100, 768, 1536])
def test_the_signature_anywhere_else_is_not_hdf5(tmp_path: Path, offset: int) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(bytes(offset) + HDF5_SIGNATURE + bytes(4096))
    with pytest.raises(InvalidModel, match="not HDF5"):
        detect_source_format(path, ".h5", has_graph_names=False)


def test_a_huge_file_that_is_not_hdf5_is_refused_without_reading_it(tmp_path: Path) -> None:
    # A sparse terabyte: reading it whole would take the memory (or the time) of the server.
    path = tmp_path / "huge.h5"
    with path.open("wb") as created:
        created.truncate(2**40)
    started = time.monotonic()
    with pytest.raises(InvalidModel, match="not HDF5"):
        detect_source_format(path, ".h5", has_graph_names=False)
    assert time.monotonic() - started < 5
    assert path.stat().st_size == 2**40


def test_the_places_looked_at_are_the_specification_s() -> None:
    assert hdf5_signature_offsets(100) == [0]
    assert hdf5_signature_offsets(520) == [0, 512]
    assert hdf5_signature_offsets(4096) == [0, 512, 1024, 2048]
    assert len(hdf5_signature_offsets(2**40)) == 32  # 0, then 2**9 ... 2**39
