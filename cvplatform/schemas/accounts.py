"""Logins, API keys, users, the audit log and health."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cvplatform.schemas.base import (
    PASSWORD_MAX_BYTES,
    PASSWORD_MIN_CHARS,
    USERNAME_PATTERN,
    Role,
    WireModel,
    check_password_length,
)

# The longest lifetime an API key can be given; a key that should outlive it never expires.
API_KEY_MAX_DAYS = 3650
_PASSWORD_RULES = (
    f"{PASSWORD_MIN_CHARS} characters or more, at most {PASSWORD_MAX_BYTES} bytes in UTF-8 "
    "(bcrypt reads no further)"
)

# --- auth -----------------------------------------------------------------------------------


class LoginRequest(WireModel):
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery"])


class TokenResponse(WireModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name)
    expires_at: str = Field(description="ISO-8601 UTC time after which the token is refused")


class Principal(WireModel):
    """Who is calling: the user behind a token or an API key."""

    user_id: int
    username: str
    role: Role
    via: Literal["token", "api_key"]


class ApiKeyCreate(WireModel):
    name: str = Field(min_length=1, max_length=100, examples=["notebook"])
    expires_in_days: int | None = Field(
        None,
        ge=1,
        le=API_KEY_MAX_DAYS,
        description=f"refuse the key this many days after its creation (1 to {API_KEY_MAX_DAYS});"
        " leave it out for a key that never expires",
        examples=[90],
    )


class ApiKeyOut(WireModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, enough to recognize it")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    expires_at: str | None = Field(
        None, description="ISO-8601 UTC time from which the key is refused; null: never"
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the full key; shown this once and never again")


# --- users ----------------------------------------------------------------------------------


class UserCreate(WireModel):
    username: str = Field(pattern=USERNAME_PATTERN, examples=["alice"])
    password: str = Field(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        description=_PASSWORD_RULES,
        examples=["a long pass phrase"],
    )
    role: Role = Field(examples=["engineer"])

    _password_length = field_validator("password")(check_password_length)


class RoleChange(WireModel):
    role: Role


class PasswordChange(WireModel):
    """A user's own password change: the current password proves it is them."""

    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        description=_PASSWORD_RULES,
        examples=["a new long pass phrase"],
    )

    _password_length = field_validator("new_password")(check_password_length)


class PasswordReset(WireModel):
    """An admin's reset of someone's password (no old password needed)."""

    password: str = Field(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        description=_PASSWORD_RULES,
        examples=["a new long pass phrase"],
    )

    _password_length = field_validator("password")(check_password_length)


class UserOut(WireModel):
    id: int
    username: str
    role: Role
    created_at: str
    created_by: int | None


# --- audit, health, configuration ------------------------------------------------------------


class AuditEntry(WireModel):
    id: int
    at: str
    request_id: str | None
    user_id: int | None
    username: str | None
    action: str
    resource: str
    result: int = Field(
        description="the HTTP status the action ended with (0 for an operator's `cvp` command)"
    )
    detail: str | None
    count: int = Field(1, description="equal events this row stands for (repeated failed logins)")
    address: str | None = Field(None, description="the client address, where it was recorded")


class Liveness(WireModel):
    status: Literal["ok"] = "ok"
    version: str


class ComponentStatus(WireModel):
    ok: bool
    detail: str


class Readiness(WireModel):
    status: Literal["ready", "unavailable"]
    store: ComponentStatus
    ray: ComponentStatus
    serve: ComponentStatus
    gpu: ComponentStatus
    # Reported, not required: presets and sample datasets still being registered after a start.
    startup: ComponentStatus
