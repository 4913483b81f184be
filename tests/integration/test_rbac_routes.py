"""Every route of the app, taken from its own route table, against every role.

A route added later is walked too: it cannot escape the permission matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cvplatform.schemas import ROLES, Role
from serve_apps.api.guard import GuardedRoute
from serve_apps.auth.policy import Action, can
from tests.helpers import route_table
from tests.integration.conftest import LivePlatform

ROUTES = route_table()


def test_the_walk_covers_the_api() -> None:
    paths = {path for _, path, _ in ROUTES}
    assert {"/api/v1/users", "/api/v1/auth/login", "/api/v1/audit", "/api/v1/health"} <= paths
    assert len(ROUTES) >= 17


@pytest.fixture(scope="module")
def keyed_clients(platform: LivePlatform) -> Iterator[dict[Role, httpx.Client]]:
    """One API-key client per role (keys, so that walking /logout revokes nothing)."""
    clients = {}
    with platform.admin() as admin:
        clients["admin"] = admin.create_api_key("rbac-walk").key
    for role in ("engineer", "viewer"):
        _, client = platform.new_user(role)  # type: ignore[arg-type]
        clients[role] = client.create_api_key("rbac-walk").key
        client.close()
    opened = {
        role: httpx.Client(base_url=platform.url, headers={"X-API-Key": key})
        for role, key in clients.items()
    }
    yield opened  # type: ignore[misc]
    for client in opened.values():
        client.close()


@pytest.mark.parametrize(
    ("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_route_obeys_the_matrix(
    platform: LivePlatform,
    keyed_clients: dict[Role, httpx.Client],
    method: str,
    path: str,
    route: GuardedRoute,
) -> None:
    anonymous = httpx.request(method, f"{platform.url}{path}", json={})
    if route.action is Action.PUBLIC:
        assert anonymous.status_code not in (401, 403)
        # readiness answers 503 here by design: this module's platform runs without Serve
        assert anonymous.status_code < 500 or path == "/api/v1/health/ready", anonymous.text
        return
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    for role in ROLES:
        answer = keyed_clients[role].request(method, path, json={})
        if can(role, route.action):
            assert answer.status_code not in (401, 403), (role, answer.text)
            assert answer.status_code < 500, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"
