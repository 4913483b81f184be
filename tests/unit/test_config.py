from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cvplatform.config import Settings


def test_defaults_work_on_a_laptop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == tmp_path / ".cvp-data"
    assert (settings.host, settings.port, settings.serve_port) == ("127.0.0.1", 8080, 8000)
    assert settings.gpu_slots == 2
    assert settings.gpu_memory_limit_mb == 16384
    assert settings.inference_workers == 10
    assert settings.inference_queue_max == 1000
    assert settings.queue_timeout_s == settings.inference_timeout_s == 30
    assert settings.session_hours == 24
    assert settings.log_level == "INFO"


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CVP_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("CVP_PORT", "9999")
    monkeypatch.setenv("CVP_LOG_LEVEL", "FATAL")
    monkeypatch.setenv("CVP_GPU_SLOTS", "1")
    settings = Settings()
    assert (settings.data_dir, settings.port, settings.log_level, settings.gpu_slots) == (
        tmp_path / "d",
        9999,
        "FATAL",
        1,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("CVP_PORT", "70000"), ("CVP_LOG_LEVEL", "LOUD"), ("CVP_GPU_SLOTS", "0"), ("CVP_PORT", "x")],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="both"):
        Settings(tls_certfile=cert)
    with pytest.raises(ValidationError, match="does not exist"):
        Settings(tls_certfile=cert, tls_keyfile=tmp_path / "missing.pem")
    assert Settings(tls_certfile=cert, tls_keyfile=cert).api_url.startswith("https://")


@pytest.mark.parametrize("password", ["short", "é" * 40])
def test_admin_password_is_checked_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("CVP_ADMIN_PASSWORD", password)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert password not in str(refused.value)


def test_refused_configuration_does_not_echo_the_admin_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CVP_ADMIN_PASSWORD", "a-fine-secret-password")
    monkeypatch.setenv("CVP_TLS_CERTFILE", str(tmp_path))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "a-fine-secret-password" not in str(refused.value)


def test_public_view_masks_secrets() -> None:
    view = Settings(admin_password="s3cret-value").public_view()
    assert view["admin_password"] == "***"
    assert "s3cret-value" not in str(view)
