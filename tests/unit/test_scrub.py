"""Server paths taken out of messages (``cvplatform.scrub``), and a failure's reason recorded
without them by the job kernel, whatever the library that wrote it."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from actors.jobs.registry import Job, Outcome, end_job, run_to_end
from actors.models.job import conversion_job
from cvplatform.config import Settings
from cvplatform.scrub import PLACEHOLDER, PathScrubber, ServerPath, platform_scrubber
from store import queries
from tests.jobs_kit import WriterStore, reporter_for


def test_a_folder_and_what_lies_below_it_are_replaced() -> None:
    scrub = PathScrubber([ServerPath("/srv/cvp/data", hidden_depth=-1)])
    text = "Unable to open file (name = '/srv/cvp/data/jwt-secret', errno = 13)"
    assert scrub(text) == f"Unable to open file (name = '{PLACEHOLDER}', errno = 13)"


def test_the_user_s_part_of_a_path_is_kept() -> None:
    scrub = PathScrubber([ServerPath("/srv/cvp/artifacts", hidden_depth=2)])
    text = "Load model from /srv/cvp/artifacts/models/ab12/source.onnx failed: bad magic"
    assert scrub(text) == "Load model from source.onnx failed: bad magic"


def test_a_folder_is_matched_whole_and_the_innermost_wins() -> None:
    scrub = PathScrubber(
        [
            ServerPath("/srv/cvp", hidden_depth=-1),
            ServerPath("/srv/cvp/work", hidden_depth=1),
        ]
    )
    assert scrub("see /srv/cvp-other/x and /srv/cvpx") == "see /srv/cvp-other/x and /srv/cvpx"
    assert scrub('"/srv/cvp/work/tmp1/saved_model/x.pb": no') == '"saved_model/x.pb": no'
    assert scrub("/srv/cvp/cvp.db, /srv/cvp") == f"{PLACEHOLDER}, {PLACEHOLDER}"


def test_text_without_server_paths_is_unchanged() -> None:
    scrub = PathScrubber([ServerPath("/srv/cvp", hidden_depth=-1)])
    text = "a classification model has one output [N, classes]; this one has 2 (a/b.png)"
    assert scrub(text) == text
    assert PathScrubber([])(text) == text


def test_the_platform_scrubber_covers_data_staging_temp_and_the_python_environment(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    scrub = platform_scrubber(settings)
    workdir = settings.staging_dir / "tmpk3j2x"
    text = (
        f"tf2onnx: cannot read {workdir}/saved_model/saved_model.pb; "
        f"staged at {settings.staging_dir}/tmp8a.upload; secret {settings.jwt_secret_path}; "
        f"dataset {settings.artifacts_dir}/datasets/d1/images/cat.png; "
        f"library {sys.prefix}/lib/python3/site-packages/torch/jit/_serialization.py"
    )
    scrubbed = scrub(text)
    assert str(tmp_path) not in scrubbed
    assert sys.prefix not in scrubbed
    assert "saved_model/saved_model.pb" in scrubbed
    assert "images/cat.png" in scrubbed
    assert "jwt-secret" not in scrubbed


# --- reasons recorded by the job kernel ----------------------------------------------------


def _onnx_with_missing_external_weights(folder: Path) -> Path:
    """An ONNX file whose weights lie in a file that is not there: the ONNX checker's message
    names that file by its full server path."""
    weights = numpy_helper.from_array(np.ones((3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])],
        [weights],
    )
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "source.onnx"
    onnx.save(
        helper.make_model(graph),
        str(model_path),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    (folder / "weights.bin").unlink()
    return model_path


def _uploaded_onnx(settings: Settings, store: WriterStore) -> str:
    model_id = uuid.uuid4().hex
    source = _onnx_with_missing_external_weights(settings.artifacts_dir / "models" / model_id)
    store.call_sync(
        "create_model",
        model={
            "id": model_id,
            "name": "external weights",
            "framework": "onnx",
            "source_format": "onnx",
            "task_type": "classification",
            "weights_origin": "uploaded",
            "source_filename": "source.onnx",
        },
        source={
            "path": f"models/{model_id}/source.onnx",
            "sha256": "0" * 64,
            "size_bytes": source.stat().st_size,
        },
    )
    return model_id


def test_a_conversion_failure_is_recorded_without_the_server_path(
    settings: Settings, store: WriterStore
) -> None:
    model_id = _uploaded_onnx(settings, store)
    job = conversion_job(model_id)
    reporter = reporter_for(settings, job, store)
    try:
        outcome = run_to_end(job, reporter)
        model = queries.model_by_id(reporter.reader, model_id)
    finally:
        reporter.close()
    assert model is not None
    assert outcome.status == "invalid"
    assert model.status_reason is not None
    # The library named the missing file by its full path; the user reads its own name.
    assert "weights.bin" in model.status_reason
    assert str(settings.data_dir) not in model.status_reason
    assert model.status_reason == outcome.reason


def test_a_reason_from_any_end_is_scrubbed_before_it_is_recorded(
    settings: Settings, store: WriterStore
) -> None:
    # What the supervisor records for a process that could not start goes the same way.
    model_id = _uploaded_onnx(settings, store)
    workdir = settings.staging_dir / "tmpq1w2e3"
    job = Job(kind="conversion", subject_id=model_id, name="convert")
    reporter = reporter_for(settings, job, store)
    try:
        recorded = end_job(
            job, Outcome.failed(f"could not start: cannot write {workdir}/model.onnx"), reporter
        )
        model = queries.model_by_id(reporter.reader, model_id)
    finally:
        reporter.close()
    assert recorded.reason == "could not start: cannot write model.onnx"
    assert model is not None and model.status_reason == recorded.reason


@pytest.mark.parametrize("status", ["failed", "invalid"])
def test_an_outcome_without_paths_keeps_its_reason(
    settings: Settings, store: WriterStore, status: str
) -> None:
    model_id = _uploaded_onnx(settings, store)
    job = conversion_job(model_id)
    reporter = reporter_for(settings, job, store)
    try:
        recorded = end_job(job, Outcome(status, "parity 0.5 > 0.001"), reporter)  # type: ignore[arg-type]
    finally:
        reporter.close()
    assert recorded.reason == "parity 0.5 > 0.001"
