"""Each user's own API keys: create (shown once, optionally expiring), list, revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status

from cvplatform.clock import to_iso
from cvplatform.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.params import KeyId
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.api_keys import generate_api_key
from serve_apps.auth.policy import Action
from store import queries

router = APIRouter(route_class=GuardedRoute, tags=["api keys"])


@router.post("/api/v1/auth/api-keys", status_code=status.HTTP_201_CREATED, **requires(Action.SELF))
async def create_api_key(body: ApiKeyCreate, request: Request) -> ApiKeyCreated:
    """Create a key for the caller. The full key is in this answer only: store it now.

    With ``expires_in_days`` the key is refused (401 ``api_key_expired``) from that time on.
    """
    state = platform(request)
    new_key = generate_api_key()
    expires_at = None
    if body.expires_in_days is not None:
        expires_at = to_iso(state.clock() + timedelta(days=body.expires_in_days))
    row = await state.ops.create_api_key(
        user_id=principal_of(request).user_id,
        name=body.name,
        prefix=new_key.prefix,
        key_hash=new_key.key_hash,
        expires_at=expires_at,
    )
    request.state.audit_detail = f"key {new_key.prefix}" + (
        f" expiring {expires_at}" if expires_at else ""
    )
    return ApiKeyCreated(**_public(row), key=new_key.key)


@router.get("/api/v1/auth/api-keys", **requires(Action.SELF))
async def list_api_keys(request: Request, db: ReadDb) -> list[ApiKeyOut]:
    """The caller's keys (prefixes only; the keys themselves are not kept)."""
    rows = queries.list_api_keys(db, principal_of(request).user_id)
    return [ApiKeyOut(**_public(row)) for row in rows]


@router.delete("/api/v1/auth/api-keys/{key_id}", **requires(Action.SELF))
async def revoke_api_key(key_id: KeyId, request: Request) -> ApiKeyOut:
    """Revoke one of the caller's keys; requests with it are refused from now on."""
    state = platform(request)
    row = await state.ops.revoke_api_key(user_id=principal_of(request).user_id, key_id=key_id)
    state.credentials.forget_record(key_id)
    return ApiKeyOut(**_public(row))


def _public(row: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in row.items() if key != "user_id"}
