"""`cvp`: every command has help; the offline commands work on a stopped platform's data."""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cvplatform.cli import main
from store import queries
from store.connections import open_reader
from store.lock import DataDirLock
from store.writer import StoreWriter


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


COMMANDS = [(), *_commands(main)]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(("cvp", *words)))
def test_every_command_has_help(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 10, f"`cvp {' '.join(words)}` needs a description"


def test_the_commands_the_issue_names_exist() -> None:
    names = {" ".join(words) for words in COMMANDS}
    assert {
        "up",
        "down",
        "status",
        "config",
        "user create",
        "user list",
        "user delete",
        "user set-role",
        "backup",
        "restore",
        "samples",
    } <= names


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CVP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CVP_BCRYPT_ROUNDS", "4")
    writer = StoreWriter(tmp_path / "data" / "cvp.db")
    writer.ensure_first_admin("hash")
    writer.close()
    return tmp_path / "data"


def test_config_prints_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVP_ADMIN_PASSWORD", "do-not-print-me")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert json.loads(result.output)["admin_password"] == "***"
    assert "do-not-print-me" not in result.output


def test_bad_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVP_PORT", "not-a-port")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1
    assert "invalid CVP_* configuration" in result.output and "port" in result.output


def test_user_commands_on_a_stopped_platform(data_dir: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main,
        ["user", "create", "erin", "--role", "engineer", "--password-stdin"],
        input="erin-password\n",
    )
    assert created.exit_code == 0, created.output
    assert runner.invoke(main, ["user", "set-role", "erin", "viewer"]).exit_code == 0
    listing = runner.invoke(main, ["user", "list"]).output
    assert "erin" in listing and "viewer" in listing
    assert runner.invoke(main, ["user", "delete", "erin"]).exit_code == 0
    assert "erin" not in runner.invoke(main, ["user", "list"]).output
    reader = open_reader(data_dir / "cvp.db")
    entries = queries.audit_entries(reader, 10, 0)
    reader.conn.close()
    assert all(entry["username"].startswith("cli:") for entry in entries)
    assert [(entry["action"], entry["detail"]) for entry in entries] == [
        ("delete_user", "user erin"),
        ("set_role", "role viewer"),
        ("create_user", "user erin as engineer"),
    ]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["user", "create", "x!", "--role", "viewer", "--password-stdin"],
            "long-enough-pw\n",
            "username",
        ),
        (
            ["user", "create", "frank", "--role", "viewer", "--password-stdin"],
            "short\n",
            "at least 8",
        ),
        (
            ["user", "create", "frank", "--role", "root", "--password-stdin"],
            "long-enough\n",
            "root",
        ),
        (["user", "delete", "admin"], None, "last admin"),
        (["user", "set-role", "admin", "viewer"], None, "last admin"),
        (["user", "delete", "nobody"], None, "no user named"),
        (
            ["user", "create", "ADMIN", "--role", "viewer", "--password-stdin"],
            "long-enough\n",
            "already exists",
        ),
    ],
)
def test_user_command_refusals(
    data_dir: Path, args: list[str], stdin: str | None, message: str
) -> None:
    result = CliRunner().invoke(main, args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_offline_writes_take_the_data_dir_lock(data_dir: Path) -> None:
    with DataDirLock(data_dir):  # as if a store actor ran, but no Ray address was recorded
        result = CliRunner().invoke(
            main,
            ["user", "create", "gus", "--role", "viewer", "--password-stdin"],
            input="gus-password\n",
        )
    assert result.exit_code == 1
    assert "cvp down" in result.output


def test_backup_and_restore(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    backup = tmp_path / "backup.db"
    assert runner.invoke(main, ["backup", str(backup)]).exit_code == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # it holds password hashes
    later = runner.invoke(
        main,
        ["user", "create", "later", "--role", "viewer", "--password-stdin"],
        input="later-password\n",
    )
    assert later.exit_code == 0, later.output
    assert "later" in runner.invoke(main, ["user", "list"]).output
    restored = runner.invoke(main, ["restore", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert "kept at" in restored.output
    assert "later" not in runner.invoke(main, ["user", "list"]).output
    missing = runner.invoke(main, ["restore", str(tmp_path / "missing.db")])
    assert missing.exit_code == 1 and "no backup file" in missing.output


def test_samples_are_built_as_zip_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["samples", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "digits.zip") as digits:
        pngs = [name for name in digits.namelist() if name.endswith(".png")]
    assert len(pngs) == 1797
    assert {name.split("/")[1] for name in pngs} == {str(n) for n in range(10)}
    with zipfile.ZipFile(tmp_path / "shapes-video.zip") as shapes:
        assert sorted(shapes.namelist()) == ["annotations.csv", "shapes.mp4"]
