"""User management (admins only): create, list, show, change role, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from cvplatform.schemas import ErrorBody, RoleChange, UserCreate, UserOut
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.params import UserId
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.passwords import hash_password
from serve_apps.auth.policy import Action
from store import queries
from store.records import as_dict

router = APIRouter(route_class=GuardedRoute, tags=["users"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "duplicate name, or the last admin"}
}


@router.post(
    "/api/v1/users",
    status_code=status.HTTP_201_CREATED,
    responses=_CONFLICT,
    **requires(Action.USERS_MANAGE),
)
async def create_user(body: UserCreate, request: Request) -> UserOut:
    state = platform(request)
    password_hash = await run_in_threadpool(
        hash_password, body.password, state.settings.bcrypt_rounds
    )
    row = await state.ops.create_user(
        username=body.username,
        password_hash=password_hash,
        role=body.role,
        created_by=principal_of(request).user_id,
    )
    request.state.audit_detail = f"user {body.username} as {body.role}"
    return UserOut.model_validate(as_dict(row))


@router.get("/api/v1/users", **requires(Action.USERS_MANAGE))
async def list_users(db: ReadDb) -> list[UserOut]:
    return [UserOut.model_validate(as_dict(row)) for row in queries.list_users(db)]


@router.get("/api/v1/users/{user_id}", **requires(Action.USERS_MANAGE))
async def get_user(user_id: UserId, db: ReadDb) -> UserOut:
    return UserOut.model_validate(
        as_dict(queries.required(queries.user_by_id, db, user_id, "user"))
    )


@router.patch("/api/v1/users/{user_id}", responses=_CONFLICT, **requires(Action.USERS_MANAGE))
async def set_user_role(user_id: UserId, body: RoleChange, request: Request) -> UserOut:
    """Change a user's role; it applies to their very next request. The last admin stays."""
    state = platform(request)
    row = await state.ops.set_role(user_id=user_id, role=body.role)
    state.credentials.forget_user(user_id)
    request.state.audit_detail = f"role {body.role}"
    return UserOut.model_validate(as_dict(row))


@router.delete(
    "/api/v1/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_CONFLICT,
    **requires(Action.USERS_MANAGE),
)
async def delete_user(user_id: UserId, request: Request) -> None:
    """Delete a user with their sessions and API keys. The last admin cannot be deleted."""
    state = platform(request)
    row = await state.ops.delete_user(user_id=user_id)
    state.credentials.forget_user(user_id)
    request.state.audit_detail = f"user {row.username}"
