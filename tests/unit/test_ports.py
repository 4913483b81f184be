"""A second platform on the same machine is refused with one line, before Ray starts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvplatform.cli import main
from cvplatform.config import Settings
from cvplatform.errors import PortInUse
from cvplatform.ports import check_ports_free, holder_of, is_free


@pytest.fixture
def listening() -> Iterator[int]:
    """A port this test process listens on, the way a running platform would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _haproxy_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """HAProxy's ports free for every test here (its defaults may be a running platform's)."""
    monkeypatch.setenv("CVP_HAPROXY_STATS_PORT", str(_free_port()))
    monkeypatch.setenv("CVP_HAPROXY_METRICS_PORT", str(_free_port()))


def test_haproxy_ports_are_checked_only_where_haproxy_answers(listening: int) -> None:
    ports = {"port": _free_port(), "serve_port": _free_port(), "dashboard_port": _free_port()}
    settings = Settings(haproxy_stats_port=listening, **ports)
    with pytest.raises(PortInUse) as refused:
        check_ports_free(settings)
    assert f"port {listening} (HAProxy's stats page) on 0.0.0.0" in refused.value.message
    assert "CVP_HAPROXY_STATS_PORT" in refused.value.message
    check_ports_free(settings.model_copy(update={"serve_ingress": "proxy"}))


def test_a_taken_port_is_named_with_its_holder_and_variable(listening: int) -> None:
    settings = Settings(dashboard_port=listening, port=_free_port(), serve_port=_free_port())
    with pytest.raises(PortInUse) as refused:
        check_ports_free(settings)
    message = refused.value.message
    assert f"port {listening} (the Ray dashboard)" in message
    assert f"pid {os.getpid()}" in message
    assert "CVP_DASHBOARD_PORT" in message
    assert "\n" not in message


def test_free_ports_pass_and_the_holder_is_optional(listening: int) -> None:
    assert not is_free("127.0.0.1", listening)
    assert holder_of(listening) is not None and str(os.getpid()) in str(holder_of(listening))
    settings = Settings(port=listening, serve_port=_free_port(), dashboard_port=_free_port())
    with pytest.raises(PortInUse, match=r"is already in use; .* set CVP_PORT"):
        check_ports_free(settings, holder=lambda port: None)
    check_ports_free(settings.model_copy(update={"port": _free_port()}))


def test_two_settings_on_one_port_are_refused() -> None:
    port = _free_port()
    settings = Settings(port=port, serve_port=port, dashboard_port=_free_port())
    with pytest.raises(PortInUse, match=r"both the management API \(CVP_PORT\) and Ray Serve"):
        check_ports_free(settings)


def test_cvp_up_refuses_in_one_line_before_starting_anything(
    listening: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CVP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CVP_SERVE_PORT", str(listening))
    monkeypatch.setenv("CVP_PORT", str(_free_port()))
    monkeypatch.setenv("CVP_DASHBOARD_PORT", str(_free_port()))
    result = CliRunner().invoke(main, ["up"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: port {listening} (Ray Serve (predictions))")
    assert "CVP_SERVE_PORT" in lines[0]
    assert not (tmp_path / "data").exists()  # nothing was started or written
