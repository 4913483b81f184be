"""The environment that puts Ray Serve in its HAProxy ingress (or keeps its Python proxy)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cvplatform.config import Settings
from cvplatform.serve_ingress import effective_ingress, haproxy_dir, serve_environment

HAPROXY_SOCKET_PATH_MAX = 97
NODE_ID = "0" * 56  # Serve puts each node's files in a subfolder named by the node id


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "a" / ("deep" * 30), **values)  # type: ignore[arg-type]


def test_haproxy_is_the_default_with_its_files_per_data_dir_and_its_ports(tmp_path: Path) -> None:
    settings = _settings(tmp_path, haproxy_stats_port=18404, haproxy_metrics_port=19101)
    environment = serve_environment(settings, cpu_count=2)
    assert environment["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert environment["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert environment["RAY_SERVE_HAPROXY_NBTHREAD"] == "2"
    assert environment["RAY_SERVE_HAPROXY_STATS_PORT"] == "18404"
    assert environment["RAY_SERVE_HAPROXY_METRICS_PORT"] == "19101"
    folder = haproxy_dir(settings)
    for name in ("CONFIG_FILE_LOC", "SOCKET_PATH", "METRICS_SOCKET_PATH", "SERVER_STATE_FILE"):
        path = environment[f"RAY_SERVE_HAPROXY_{name}"]
        assert Path(path).parent == folder
        node_scoped = Path(path).parent / NODE_ID / Path(path).name
        assert len(str(node_scoped)) <= HAPROXY_SOCKET_PATH_MAX  # however deep the data dir
    other = _settings(tmp_path / "other")
    assert haproxy_dir(other) != folder  # two platforms on one machine do not share them
    assert serve_environment(settings, cpu_count=64)["RAY_SERVE_HAPROXY_NBTHREAD"] == "4"


def test_the_python_proxy_when_asked_with_tls_or_on_another_address(tmp_path: Path) -> None:
    asked = _settings(tmp_path, serve_ingress="proxy")
    assert effective_ingress(asked) == "proxy"
    assert serve_environment(asked, cpu_count=2) == {
        "RAY_SERVE_ENABLE_HA_PROXY": "0",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
    }
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.write_text("certificate")
    key.write_text("key")
    with_tls = _settings(tmp_path, tls_certfile=certificate, tls_keyfile=key)
    assert with_tls.serve_ingress == "haproxy"
    assert effective_ingress(with_tls) == "proxy"  # HAProxy here does not terminate TLS
    assert effective_ingress(_settings(tmp_path, host="0.0.0.0")) == "haproxy"
    assert effective_ingress(_settings(tmp_path, host="127.0.0.2")) == "proxy"


def test_a_long_temporary_folder_falls_back_to_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("long" * 20)))
    assert haproxy_dir(_settings(tmp_path)).parent == Path("/tmp")
