"""What every wire model shares: roles, the base model, pages, the error body."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "engineer", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "engineer", "viewer")

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$"
# bcrypt reads at most 72 bytes of a password; a longer one would be silently cut, so it is refused.
PASSWORD_MAX_BYTES = 72
PASSWORD_MIN_CHARS = 8


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


Item = TypeVar("Item")


class Page(WireModel, Generic[Item]):
    """One page of a listing, and how many match in all."""

    items: list[Item]
    total: int
    limit: int
    offset: int


def check_password_length(password: str) -> str:
    if len(password) < PASSWORD_MIN_CHARS:
        raise ValueError(f"the password needs at least {PASSWORD_MIN_CHARS} characters")
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise ValueError(f"the password may hold at most {PASSWORD_MAX_BYTES} bytes (UTF-8)")
    return password


# --- errors -----------------------------------------------------------------------------------


class ErrorDetail(WireModel):
    code: str = Field(examples=["forbidden"])
    message: str = Field(examples=["role 'viewer' may not do 'users.manage'"])
    request_id: str = Field(examples=["5f1c2a9e0b7d4c3e8a6b1d2f3e4c5b6a"])
    fields: list[dict[str, Any]] | None = Field(
        None, description="for validation errors: one entry per rejected field"
    )


class ErrorBody(WireModel):
    error: ErrorDetail
