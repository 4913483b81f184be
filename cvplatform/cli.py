"""``cvp``: start, stop and inspect the platform, manage users, back up and restore.

Each command is a few lines over :mod:`cvplatform.bootstrap`, :mod:`store` and the SDK.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
from pydantic import ValidationError

from cvplatform import __version__
from cvplatform.config import Settings
from cvplatform.errors import CvpError
from cvplatform.ports import check_ports_free
from cvplatform.schemas import ROLES, PasswordReset, UserCreate

_STARTUP_TIMEOUT_S = 240.0
# `cvp up` says it is up once the presets and samples are listed, or after this long regardless.
_REGISTRATION_TIMEOUT_S = 120.0


class _Group(click.Group):
    """Platform errors end a command with their message and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CvpError as error:
            raise click.ClickException(error.message) from error


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid CVP_* configuration:\n{error}") from error


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cvp")
def main() -> None:
    """cv-platform: from model upload to a measured, packaged deployment.

    Configuration comes from CVP_* environment variables; `cvp config` shows it.
    """
    # The platform's Ray uses token authentication (Ray's default for a new cluster). A driver
    # that connects by address must say so before Ray is imported; the token is in ~/.ray.
    os.environ.setdefault("RAY_AUTH_MODE", "token")


# --- running the platform ------------------------------------------------------------------


@main.command()
@click.option("--detach", is_flag=True, help="Run in the background; stop it with `cvp down`.")
def up(detach: bool) -> None:
    """Start Ray, the store, Serve and the management API on this machine."""
    settings = load_settings()
    pid = _running_pid(settings)
    if pid is not None:
        raise click.ClickException(
            f"the platform is already running on {settings.data_dir} (pid {pid}); "
            "`cvp status` shows it, `cvp down` stops it"
        )
    check_ports_free(settings)
    if detach:
        _up_detached(settings)
    else:
        _up_foreground(settings)


def _ray_command() -> str:
    """This installation's ``ray`` as a shell runs it: plain ``ray`` where PATH finds this one."""
    beside = Path(sys.executable).parent / "ray"
    on_path = shutil.which("ray")
    if on_path is not None and Path(on_path).resolve() == beside.resolve():
        return "ray"
    return str(beside)


def _banner(settings: Settings, admin_note: str) -> str:
    scheme = "https" if settings.tls_enabled else "http"
    host = settings.host
    return "\n".join(
        [
            f"cv-platform {__version__} is up",
            f"  management API  {settings.api_url}/api/v1  (docs: {settings.api_url}/docs)",
            f"  predictions     {scheme}://{host}:{settings.serve_port}",
            f"  Ray dashboard   http://{settings.dashboard_host}:{settings.dashboard_port}"
            f"  (its token: `{_ray_command()} get-auth-token`)",
            f"  data            {settings.data_dir}  (logs in {settings.log_dir})",
            f"  first admin     {admin_note}",
        ]
    )


def _interrupt_on_stop_signals() -> None:
    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell starts background jobs with it ignored, and Python keeps an
    # ignored SIGINT ignored; Ctrl-C and `kill -INT` must stop the platform all the same.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)


def _up_foreground(settings: Settings) -> None:
    from cvplatform.bootstrap import start_platform, stop_platform, wait_for_registrations

    _interrupt_on_stop_signals()
    running = start_platform(settings)
    # Again: deploying the Serve application installs Ray's own SIGTERM handler in this process,
    # which ends it on the spot (seen: `cvp down` left the run files and Serve behind).
    _interrupt_on_stop_signals()
    try:
        if running.registrations:
            click.echo("registering the presets and sample datasets (a first start takes longest)")
            sys.stdout.flush()
            if not wait_for_registrations(running, _REGISTRATION_TIMEOUT_S):
                click.echo("  still registering: `cvp status` shows what is missing")
        click.echo(_banner(settings, running.admin_password_note))
        click.echo("Press Ctrl-C to stop.", nl=True)
        sys.stdout.flush()
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("stopping...")
    finally:
        stop_platform(running)
        click.echo("stopped.")


def _up_detached(settings: Settings) -> None:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    console = settings.log_dir / "cvp-up.out"
    earlier_output = console.stat().st_size if console.exists() else 0
    with console.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cvplatform.cli", "up"],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"the platform did not start; see {console}")
        banner = _printed_banner(console, earlier_output)
        if banner is not None:
            click.echo(banner)
            click.echo(f"started in the background (pid {process.pid}); stop it with `cvp down`")
            click.echo(f"console output: {console}")
            return
        time.sleep(1)
    raise click.ClickException(f"the platform did not start within {_STARTUP_TIMEOUT_S:.0f}s")


def _printed_banner(console: Path, earlier_output: int) -> str | None:
    """The banner the background `cvp up` printed (after the start-up registrations), if yet."""
    with console.open("rb") as output:
        output.seek(earlier_output)
        printed = output.read().decode(errors="replace")
    up = printed.find(" is up\n")
    end = printed.find("Press Ctrl-C", up)
    if up < 0 or end < 0:
        return None
    return printed[printed.rfind("\n", 0, up) + 1 : end].rstrip()


def _probe(settings: Settings, path: str, timeout_s: float) -> httpx.Response:
    # Our own process on this machine, asked only for its public health answer; a self-signed
    # certificate (the usual local TLS setup) must not make the platform look down.
    return httpx.get(f"{settings.api_url}{path}", timeout=timeout_s, verify=False)  # noqa: S501


def _running_pid(settings: Settings) -> int | None:
    """The pid of this data directory's `cvp up`, if that process is alive.

    A pid file left by a crash may name a process that has since reused the number: only a
    process whose command line is cv-platform's counts.
    """
    from cvplatform.bootstrap import pid_file

    try:
        pid = int(pid_file(settings).read_text())
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"cvp" in command_line or b"cvplatform" in command_line else None


@main.command()
def down() -> None:
    """Stop the platform started with `cvp up` (in-flight requests finish first)."""
    settings = load_settings()
    pid = _running_pid(settings)
    if pid is None:
        click.echo(f"no platform is running on {settings.data_dir}")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_timeout_s + 15
    while time.monotonic() < deadline:
        if _running_pid(settings) is None:
            click.echo("stopped.")
            return
        time.sleep(0.5)
    raise click.ClickException(f"the platform (pid {pid}) did not stop in time")


@main.command()
def status() -> None:
    """Show whether the platform runs and its readiness (exit status 1 if not ready)."""
    settings = load_settings()
    pid = _running_pid(settings)
    report: dict[str, Any] = {"running": pid is not None, "pid": pid, "api": settings.api_url}
    try:
        answer = _probe(settings, "/api/v1/health/ready", 10)
        report["readiness"] = answer.json()
    except (httpx.HTTPError, ValueError) as error:
        report["readiness"] = {"status": "unavailable", "detail": str(error)}
    click.echo(json.dumps(report, indent=2))
    if report["readiness"].get("status") != "ready":
        sys.exit(1)


@main.command()
def config() -> None:
    """Print the effective configuration (secrets masked)."""
    click.echo(json.dumps(load_settings().public_view(), indent=2))


# --- users -------------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Manage users (works whether the platform runs or not)."""


@user.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user with a role."""
    from serve_apps.auth.passwords import hash_password

    password = _new_password(password_stdin)
    try:
        request = UserCreate(username=username, password=password, role=role)
    except ValidationError as error:
        raise click.ClickException(_first_problem(error)) from error
    settings = load_settings()
    password_hash = hash_password(request.password, settings.bcrypt_rounds)
    row = _operator_change(
        settings,
        f"user {request.username} as {role}",
        "create_user",
        username=request.username,
        password_hash=password_hash,
        role=role,
    )
    click.echo(f"created user {row.username} (id {row.id}) as {row.role}")


@user.command("list")
def user_list() -> None:
    """List users."""
    from store import queries
    from store.connections import reading

    with reading(load_settings().db_path) as reader:
        for row in queries.list_users(reader):
            click.echo(f"{row.id:>4}  {row.username:<24} {row.role:<9} {row.created_at}")


@user.command("delete")
@click.argument("username")
def user_delete(username: str) -> None:
    """Delete a user (never the last admin)."""
    settings = load_settings()
    user_id = _user_id(settings, username)
    _operator_change(settings, f"user {username}", "delete_user", user_id=user_id)
    click.echo(f"deleted user {username}")


@user.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def user_set_role(username: str, role: str) -> None:
    """Change a user's role (never demoting the last admin)."""
    settings = load_settings()
    user_id = _user_id(settings, username)
    row = _operator_change(settings, f"role {role}", "set_role", user_id=user_id, role=role)
    click.echo(f"{row.username} is now {row.role}")


@user.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def user_reset_password(username: str, password_stdin: bool) -> None:
    """Set a user's password and end all their login sessions (their API keys stay)."""
    from serve_apps.auth.passwords import hash_password

    settings = load_settings()
    user_id = _user_id(settings, username)  # before asking for a password it would not use
    try:
        request = PasswordReset(password=_new_password(password_stdin))
    except ValidationError as error:
        raise click.ClickException(_first_problem(error)) from error
    password_hash = hash_password(request.password, settings.bcrypt_rounds)
    changed = _operator_change(
        settings,
        f"password of {username} reset",
        "set_password",
        user_id=user_id,
        password_hash=password_hash,
    )
    click.echo(
        f"reset the password of {changed['username']}; "
        f"login sessions revoked: {changed['sessions_revoked']} (API keys stay)"
    )


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = click.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


def _operator_change(settings: Settings, detail: str, operation: str, **kwargs: Any) -> Any:
    """Run one store operation for the operator and put it in the audit log, like the API does."""
    from cvplatform.bootstrap import operator_store

    with operator_store(settings) as store:
        result = store.call(operation, **kwargs)
        store.call(
            "append_audit",
            action=operation,
            resource=f"cvp user {operation}",
            result=0,
            username=f"cli:{getpass.getuser()}",
            detail=detail,
        )
    return result


def _user_id(settings: Settings, username: str) -> int:
    from store import queries
    from store.connections import reading

    with reading(settings.db_path) as reader:
        row = queries.user_credentials(reader, username)
    if row is None:
        raise click.ClickException(f"no user named {username!r}")
    return int(row["id"])


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    return f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"


# --- sample datasets ---------------------------------------------------------------------------


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the files (default: <data dir>/samples).",
)
def samples(out: Path | None) -> None:
    """Build the sample datasets (digits, shapes-video) as uploadable ZIP files.

    `cvp up` registers them by itself at first start; this writes the same files for uploading
    elsewhere or looking at.
    """
    from actors.datasets.samples import SAMPLES, build_sample

    folder = out or load_settings().data_dir / "samples"
    for key, sample in SAMPLES.items():
        path = build_sample(key, folder)
        click.echo(f"{path}  ({sample.task_type}: {sample.description})")


# --- backup and restore ----------------------------------------------------------------------


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a consistent copy of the database to PATH (works while the platform runs)."""
    from store.backup import backup_database

    written = backup_database(load_settings().db_path, path)
    click.echo(f"backed up to {written} ({written.stat().st_size} bytes)")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Replace the database with the backup at PATH (the platform must be stopped)."""
    from store.backup import restore_database

    settings = load_settings()
    restored = restore_database(path, settings.db_path, settings.store_busy_timeout_s)
    click.echo(f"restored from {path}; every login session is revoked")
    if restored.kept is not None:
        click.echo(f"the database it replaced is kept at {restored.kept}")
    if restored.keys_kept_revoked is None:
        click.echo(
            "no readable database was replaced: API keys are as they were in the backup "
            "(revoked ones stay revoked); review them"
        )
    else:
        click.echo(
            f"{restored.keys_kept_revoked} API keys revoked or deleted since the backup "
            "stay revoked"
        )


if __name__ == "__main__":
    main()
