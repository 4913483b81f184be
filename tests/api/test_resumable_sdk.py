"""The SDK's resumable uploads over real HTTP: the in-process app served by uvicorn on a local
port (no Ray), the connection cut in the middle of a file, and the upload resumed from what the
server kept.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from cvplatform.client import Client
from cvplatform.client_uploads import UploadOptions
from serve_apps.api.app import create_app
from tests.api_harness import ADMIN_PASSWORD, MAX_MODEL_BYTES, in_process_platform
from tests.helpers import free_port, unique, wait_for

CHUNK_BYTES = 128 * 1024
FILE_BYTES = 3 * CHUNK_BYTES + 4321  # under the harness' model limit
assert FILE_BYTES < MAX_MODEL_BYTES
ONNX_HEADER = b"\x08\x08\x12\x07pytorch"
IDLE_TIMEOUT_S = 1.0  # how long a PATCH that receives nothing holds its upload (60 s for real)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a real socket, served by uvicorn on a thread as the API server actor does."""
    with in_process_platform(tmp_path_factory.mktemp("sdk") / "data") as running:
        running.state.uploads.idle_timeout_s = IDLE_TIMEOUT_S
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(running.state),
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@pytest.fixture(scope="module")
def engineer_key(base_url: str) -> str:
    with Client.login(base_url, "admin", ADMIN_PASSWORD) as admin:
        username = unique("engineer")
        admin.create_user(username, "engineer-password", role="engineer")
    with Client.login(base_url, username, "engineer-password") as engineer:
        return engineer.create_api_key("sdk").key


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "random.onnx"
    path.write_bytes(ONNX_HEADER + os.urandom(FILE_BYTES - len(ONNX_HEADER)))
    return path


class _CutStream(httpx.SyncByteStream):
    """A request body that breaks off after ``keep`` bytes, as a dropped connection does."""

    def __init__(self, inner: httpx.SyncByteStream, keep: int) -> None:
        self._inner, self._keep = inner, keep

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for block in self._inner:
            if sent + len(block) >= self._keep:
                yield block[: self._keep - sent]
                raise httpx.WriteError("the connection dropped (cut by the test)")
            sent += len(block)
            yield block


class DropOnce(httpx.BaseTransport):
    """The network, which drops the connection once, ``cut_at`` bytes into the file."""

    def __init__(self, cut_at: int) -> None:
        self._network = httpx.HTTPTransport()
        self._cut_at = cut_at
        self.cut = False
        self.patch_offsets: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            offset = int(request.headers["upload-offset"])
            self.patch_offsets.append(offset)
            end = offset + int(request.headers["content-length"])
            if not self.cut and offset < self._cut_at < end:
                self.cut = True
                assert isinstance(request.stream, httpx.SyncByteStream)
                request.stream = _CutStream(request.stream, self._cut_at - offset)
        return self._network.handle_request(request)

    def close(self) -> None:
        self._network.close()


def test_an_upload_cut_in_the_middle_resumes_to_the_same_sha256(
    base_url: str, engineer_key: str, model_file: Path
) -> None:
    cut_at = CHUNK_BYTES + CHUNK_BYTES // 2  # in the middle of the second PATCH
    network = DropOnce(cut_at)
    options = UploadOptions(chunk_bytes=CHUNK_BYTES, backoff_s=0.05)
    with Client(base_url, api_key=engineer_key, upload_options=options, transport=network) as sdk:
        accepted = sdk.upload_model(model_file, unique("resumed"), "classification", progress=False)
        model = sdk.get_model(accepted.id)
    assert network.cut
    assert model.source.sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert model.source.size_bytes == FILE_BYTES
    # Resumed, not restarted: after the cut no PATCH starts before the cut PATCH did, and the
    # bytes sent add up to about the file once.
    offsets = network.patch_offsets
    assert offsets[:2] == [0, CHUNK_BYTES]
    assert offsets.count(0) == 1
    assert min(offsets[2:]) >= CHUNK_BYTES
    assert len(offsets) <= 6


def _tus(**headers: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **{name.replace("_", "-"): v for name, v in headers.items()}}


def _create(http: httpx.Client, length: int) -> str:
    created = http.post(
        "/api/v1/uploads",
        headers=_tus(
            Upload_Length=str(length),
            Upload_Metadata="filename cmF3Lm9ubng=,kind bW9kZWw=",  # raw.onnx, model
        ),
    )
    assert created.status_code == 201, created.text
    url: str = created.headers["location"]
    return url


def _partial_patch(base_url: str, key: str, url: str, content: bytes, sent: int) -> socket.socket:
    """A PATCH of ``content`` on a raw socket, of which only ``sent`` bytes go out."""
    raw = socket.create_connection(("127.0.0.1", int(base_url.rsplit(":", 1)[1])))
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(content)}\r\n\r\n"
    )
    raw.sendall(head.encode() + content[:sent])
    return raw


def _offset_becomes(http: httpx.Client, url: str, expected: int) -> None:
    def offset() -> None:
        answer = http.head(url, headers=_tus())
        assert answer.headers["upload-offset"] == str(expected)

    wait_for(offset, timeout_s=10, interval_s=0.05)


def _finish_and_check(http: httpx.Client, url: str, content: bytes, offset: int) -> None:
    rest = http.patch(
        url,
        content=content[offset:],
        headers=_tus(Upload_Offset=str(offset), Content_Type="application/offset+octet-stream"),
    )
    assert rest.status_code == 204, rest.text
    accepted = http.post(
        "/api/v1/models",
        json={
            "upload_id": url.rsplit("/", 1)[1],
            "name": unique("raw"),
            "task_type": "classification",
        },
    )
    assert accepted.status_code == 202, accepted.text
    model = http.get(accepted.json()["url"]).json()
    assert model["source"]["sha256"] == hashlib.sha256(content).hexdigest()


def test_what_arrived_before_a_drop_is_kept(base_url: str, engineer_key: str) -> None:
    """The server side of a drop: half a PATCH, then the connection closes."""
    content = os.urandom(200_000)
    with httpx.Client(base_url=base_url, headers={"X-API-Key": engineer_key}) as http:
        url = _create(http, len(content))
        with _partial_patch(base_url, engineer_key, url, content, 120_000):
            time.sleep(0.2)  # let the bytes be read before the connection goes
        _offset_becomes(http, url, 120_000)
        _finish_and_check(http, url, content, 120_000)


def test_a_stalled_connection_lets_go_of_the_upload(base_url: str, engineer_key: str) -> None:
    """A connection that dies without closing (no FIN) holds the upload only until its bytes
    have stopped for the idle timeout; then what it sent is kept and the upload resumes."""
    content = os.urandom(200_000)
    with httpx.Client(base_url=base_url, headers={"X-API-Key": engineer_key}) as http:
        url = _create(http, len(content))
        with _partial_patch(base_url, engineer_key, url, content, 120_000):
            time.sleep(0.2)
            busy = http.patch(
                url,
                content=content,
                headers=_tus(Upload_Offset="0", Content_Type="application/offset+octet-stream"),
            )
            assert busy.status_code == 409
            assert busy.json()["error"]["code"] == "upload_busy"
            _offset_becomes(http, url, 120_000)  # after IDLE_TIMEOUT_S, the socket still open
            _finish_and_check(http, url, content, 120_000)


def test_a_dataset_and_its_table_with_a_progress_bar(
    base_url: str, engineer_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as sink:
        sink.writestr("cat/1.png", os.urandom(50_000))
    table = tmp_path / "labels.csv"
    table.write_text("path,label\ncat/1.png,cat\n")
    with Client(base_url, api_key=engineer_key) as sdk:
        accepted = sdk.upload_dataset(
            archive, unique("pets"), "classification", metadata=table, progress=True
        )
        dataset = sdk.get_dataset(accepted.id)
    assert dataset.source.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    bars = capsys.readouterr().err
    assert "pets.zip [" in bars and "labels.csv [" in bars
    assert bars.count("100.0%") >= 2


class AlwaysDrops(httpx.BaseTransport):
    """A network on which no PATCH ever gets through."""

    def __init__(self) -> None:
        self._network = httpx.HTTPTransport()
        self.patches = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            self.patches += 1
            raise httpx.WriteError("the connection dropped (cut by the test)")
        return self._network.handle_request(request)

    def close(self) -> None:
        self._network.close()


def test_the_sdk_gives_up_after_its_retries(
    base_url: str, engineer_key: str, model_file: Path
) -> None:
    network = AlwaysDrops()
    options = UploadOptions(chunk_bytes=CHUNK_BYTES, retries=2, backoff_s=0)
    with (
        Client(base_url, api_key=engineer_key, upload_options=options, transport=network) as sdk,
        pytest.raises(httpx.WriteError),
    ):
        sdk.upload_model(model_file, unique("never"), "classification", progress=False)
    assert network.patches == 3
