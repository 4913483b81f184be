"""`cvp`: every command has help; the offline commands work on a stopped platform's data."""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cvplatform.cli import main
from serve_apps.auth.api_keys import generate_api_key
from serve_apps.auth.passwords import hash_password, verify_password
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
        "user reset-password",
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
            ["user", "reset-password", "nobody", "--password-stdin"],
            "long-enough\n",
            "no user named",
        ),
        (["user", "reset-password", "admin", "--password-stdin"], "short\n", "at least 8"),
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


def test_reset_password_ends_the_users_sessions(data_dir: Path) -> None:
    writer = StoreWriter(data_dir / "cvp.db")
    erin = writer.create_user("erin", hash_password("old-password", 4), "engineer")
    writer.create_session("erins-session", erin.id, "2999-01-01T00:00:00.000+00:00")
    writer.close()
    result = CliRunner().invoke(
        main, ["user", "reset-password", "erin", "--password-stdin"], input="new-password\n"
    )
    assert result.exit_code == 0, result.output
    assert "login sessions revoked: 1" in result.output
    reader = open_reader(data_dir / "cvp.db")
    session = queries.session_for_auth(reader, "erins-session")
    credentials = queries.user_credentials(reader, "erin")
    entries = queries.audit_entries(reader, 10, 0)
    reader.conn.close()
    assert session is not None and session["revoked_at"] is not None
    assert credentials is not None
    assert verify_password("new-password", credentials["password_hash"], 4)
    assert not verify_password("old-password", credentials["password_hash"], 4)
    assert [(entry["action"], entry["detail"]) for entry in entries] == [
        ("set_password", "password of erin reset")
    ]
    assert "new-password" not in repr(entries)


def test_restore_keeps_api_keys_revoked_after_the_backup(data_dir: Path, tmp_path: Path) -> None:
    writer = StoreWriter(data_dir / "cvp.db")
    keys = {}
    for name in ("kept", "revoked", "deleted"):
        owner = writer.create_user(f"{name}-owner", "hash", "engineer")
        new_key = generate_api_key()
        writer.create_api_key(owner.id, name, new_key.prefix, new_key.key_hash)
        keys[name] = new_key
    writer.close()
    runner = CliRunner()
    assert runner.invoke(main, ["backup", str(tmp_path / "backup.db")]).exit_code == 0

    writer = StoreWriter(data_dir / "cvp.db")
    revoked = writer.revoke_api_key(*_owner_and_id(writer, keys["revoked"].prefix))
    writer.delete_user(_owner_and_id(writer, keys["deleted"].prefix)[0])
    writer.close()
    restored = runner.invoke(main, ["restore", str(tmp_path / "backup.db")])
    assert restored.exit_code == 0, restored.output
    assert "2 API keys revoked or deleted since the backup stay revoked" in restored.output

    reader = open_reader(data_dir / "cvp.db")
    revoked_at = {
        name: _row(queries.api_key_for_auth(reader, key.prefix))["revoked_at"]
        for name, key in keys.items()
    }
    reader.conn.close()
    assert revoked_at["kept"] is None  # still good: it was neither revoked nor deleted
    assert revoked_at["revoked"] == revoked["revoked_at"]
    assert revoked_at["deleted"] is not None  # its user comes back; the key does not


def _row(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    return row


def _owner_and_id(writer: StoreWriter, prefix: str) -> tuple[int, int]:
    row = _row(queries.api_key_for_auth(writer._db, prefix))
    return row["user_id"], row["id"]


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
