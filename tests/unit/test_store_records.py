"""Typed records out of the store, and the typed operations facade over a real writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import queries
from store.operations import AsyncStoreOperations, StoreOperations, _Async
from store.records import FileRef, ModelRecord, Page, SourceFile, UserRecord
from store.writer import StoreWriter
from tests.jobs_kit import WriterStore


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    store_writer = StoreWriter(tmp_path / "cvp.db")
    yield store_writer
    store_writer.close()


def _model(writer: StoreWriter, model_id: str = "m1") -> None:
    writer.create_model(
        {
            "id": model_id,
            "name": "tiny",
            "framework": "onnx",
            "source_format": "onnx",
            "task_type": "classification",
            "weights_origin": "uploaded",
            "source_filename": "tiny.onnx",
            "input_shape": "[3, 32, 32]",
            "details": {"graph_names": {"inputs": ["x"]}},
        },
        {"path": f"models/{model_id}/source.onnx", "sha256": "a" * 64, "size_bytes": 10},
    )


def test_a_model_comes_back_as_a_record_with_its_files_and_json_decoded(
    writer: StoreWriter,
) -> None:
    _model(writer)
    ready = writer.finish_conversion(
        "m1",
        {"path": "models/m1/model.onnx", "sha256": "b" * 64, "size_bytes": 20},
        {"parity": {"cosine_similarity": 1.0}},
    )
    assert isinstance(ready, ModelRecord) and ready.status == "ready"
    assert ready.source == SourceFile(
        ready.source.artifact_id, "models/m1/source.onnx", "a" * 64, 10, "onnx"
    )
    assert ready.onnx == FileRef(ready.onnx.artifact_id, "models/m1/model.onnx", "b" * 64, 20)  # type: ignore[union-attr]
    assert ready.input_shape == [3, 32, 32]
    assert ready.details == {"graph_names": {"inputs": ["x"]}, "parity": {"cosine_similarity": 1.0}}
    with pytest.raises(AttributeError):
        ready.status = "failed"  # type: ignore[misc]
    page = queries.list_models(writer._db, {}, limit=10, offset=0)
    assert page == Page([ready], 1)


def test_the_sync_facade_runs_the_writers_operations_with_their_types(
    writer: StoreWriter,
) -> None:
    store = WriterStore(writer)
    ops = StoreOperations(store)
    user = ops.create_user("ada", "hash", "engineer")  # positionals travel by name
    assert isinstance(user, UserRecord) and user.username == "ada"
    assert store.calls == {"create_user": 1}


def test_the_async_facade_awaits_the_store(writer: StoreWriter) -> None:
    class Awaited:
        async def call(self, operation: str, **kwargs: Any) -> Any:
            return getattr(writer, operation)(**kwargs)

    async def scenario() -> UserRecord:
        return await AsyncStoreOperations(Awaited()).set_role(
            user_id=writer.create_user("bo", "h", "viewer").id, role="engineer"
        )

    assert asyncio.run(scenario()).role == "engineer"


def test_only_store_operations_can_be_exposed() -> None:
    with pytest.raises(TypeError, match="close is not a store operation"):
        _Async(StoreWriter.close)
