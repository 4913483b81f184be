"""Ray's own surfaces: the dashboard stays on its own interface whatever ``CVP_HOST`` says, Ray
runs with token authentication only, ``cvp up`` says how to get the token, and the store actor
takes calls only with the store secret (its class, here without Ray, over a real SQLite file)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from cvplatform.bootstrap import (
    ray_init_arguments,
    require_ray_token_auth,
    start_platform,
)
from cvplatform.cli import _banner, _printed_banner
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput, PermissionDenied
from cvplatform.ports import needed_ports
from store import queries
from store.actor import STORE_SECRET_ENV, StoreActor, start_store_actor
from store.connections import open_reader

SECRET = "the-platforms-store-secret"


def test_the_dashboard_stays_local_when_the_api_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVP_HOST", "0.0.0.0")  # what an operator opening the API sets
    opened = Settings()
    arguments = ray_init_arguments(opened)
    assert arguments["dashboard_host"] == "127.0.0.1"
    assert arguments["address"] == "local" and arguments["include_dashboard"] is True
    dashboard = next(port for port in needed_ports(opened) if port.variable == "CVP_DASHBOARD_PORT")
    assert (dashboard.host, dashboard.port) == ("127.0.0.1", opened.dashboard_port)
    assert f"Ray dashboard   http://127.0.0.1:{opened.dashboard_port} " in _banner(opened, "")

    monkeypatch.setenv("CVP_DASHBOARD_HOST", "10.1.2.3")
    chosen = Settings()
    assert ray_init_arguments(chosen)["dashboard_host"] == "10.1.2.3"
    assert f"http://10.1.2.3:{chosen.dashboard_port}" in _banner(chosen, "")


@pytest.mark.parametrize("mode", [None, "token", "TOKEN"])
def test_token_authentication_is_accepted(mode: str | None) -> None:
    require_ray_token_auth({} if mode is None else {"RAY_AUTH_MODE": mode})


def test_ray_without_token_authentication_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(InvalidInput, match=r"RAY_AUTH_MODE=disabled: .* unset RAY_AUTH_MODE"):
        start_platform(Settings(data_dir=tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_the_banner_names_a_ray_command_that_is_this_installations() -> None:
    banner = _banner(Settings(), "note")
    command = banner.split("(its token: `")[1].split("`")[0]
    executable, subcommand = command.rsplit(" ", 1)
    assert subcommand == "get-auth-token"
    found = shutil.which(executable)
    assert found is not None
    assert Path(found).resolve() == (Path(sys.executable).parent / "ray").resolve()


def test_cvp_up_detach_repeats_the_banner_once_it_is_complete(tmp_path: Path) -> None:
    console = tmp_path / "cvp-up.out"
    console.write_text("cv-platform 0.0.9 is up\n  from an earlier start\nPress Ctrl-C to stop.\n")
    earlier = console.stat().st_size
    banner = _banner(Settings(), "the note")
    with console.open("a") as sink:
        sink.write("registering the presets and sample datasets\n" + banner + "\n")
    assert _printed_banner(console, earlier) is None  # not all of it yet
    with console.open("a") as sink:
        sink.write("Press Ctrl-C to stop.\n")
    assert _printed_banner(console, earlier) == banner


def _audit_rows(settings: Settings, action: str) -> list[dict[str, object]]:
    reader = open_reader(settings.db_path)
    try:
        return [
            entry for entry in queries.audit_entries(reader, 100, 0) if entry["action"] == action
        ]
    finally:
        reader.conn.close()


def test_the_store_refuses_a_caller_without_its_secret_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = StoreActor(settings, SECRET)
    row = {"action": "probe", "resource": "store", "result": 200}
    for wrong, said in ((None, "no store secret"), ("a-guess", "a wrong store secret")):
        with pytest.raises(PermissionDenied, match=said):
            store.call("append_audit", row, wrong)
        with pytest.raises(PermissionDenied):
            store.ping(wrong)
        with pytest.raises(PermissionDenied):
            store.close(wrong)
    assert _audit_rows(settings, "probe") == []

    store.call("append_audit", row, SECRET)  # the refused close() closed nothing
    assert store.ping(SECRET)["schema_version"] > 0
    store.close(SECRET)
    assert [entry["resource"] for entry in _audit_rows(settings, "probe")] == ["store"]


def test_the_store_is_not_started_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_SECRET_ENV, raising=False)
    with pytest.raises(RuntimeError, match="init_ray_with_store_secret"):
        start_store_actor(Settings(data_dir=tmp_path / "data"))
