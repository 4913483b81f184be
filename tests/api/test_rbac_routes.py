"""Every route of the app, taken from its own route table: the action it must declare (a table
here, read against the permission matrix of design.md), and a walk with every role.

A route added later without an entry in ``EXPECTED_ACTIONS`` fails the first test; one that
declares another action than its entry fails the second. The walk runs in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cvplatform.schemas import ROLES, Role
from serve_apps.api.guard import GuardedRoute
from serve_apps.auth.policy import PERMISSIONS, Action, can
from tests.api_harness import InProcessApi, error_of, in_process_api
from tests.helpers import route_table

ROUTES = route_table()
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]

# (method, path template) -> the action the route must declare.
EXPECTED_ACTIONS: dict[tuple[str, str], Action] = {
    # liveness, readiness, login and the API documents need no credentials
    ("GET", "/api/v1/health"): Action.PUBLIC,
    ("GET", "/api/v1/health/ready"): Action.PUBLIC,
    ("POST", "/api/v1/auth/login"): Action.PUBLIC,
    ("GET", "/api/v1/openapi.json"): Action.PUBLIC,
    ("GET", "/docs"): Action.PUBLIC,
    # who am I, log out, one's own password and API keys: every role
    ("POST", "/api/v1/auth/logout"): Action.SELF,
    ("POST", "/api/v1/auth/password"): Action.SELF,
    ("GET", "/api/v1/auth/me"): Action.SELF,
    ("POST", "/api/v1/auth/api-keys"): Action.SELF,
    ("GET", "/api/v1/auth/api-keys"): Action.SELF,
    ("DELETE", "/api/v1/auth/api-keys/{key_id}"): Action.SELF,
    # user management: admins
    ("POST", "/api/v1/users"): Action.USERS_MANAGE,
    ("GET", "/api/v1/users"): Action.USERS_MANAGE,
    ("GET", "/api/v1/users/{user_id}"): Action.USERS_MANAGE,
    ("PATCH", "/api/v1/users/{user_id}"): Action.USERS_MANAGE,
    ("DELETE", "/api/v1/users/{user_id}"): Action.USERS_MANAGE,
    ("PUT", "/api/v1/users/{user_id}/password"): Action.USERS_MANAGE,
    # models: engineers upload and read, admins delete
    ("POST", "/api/v1/models"): Action.RESOURCES_UPLOAD,
    ("GET", "/api/v1/models"): Action.RESOURCES_READ,
    ("GET", "/api/v1/models/{model_id}"): Action.RESOURCES_READ,
    ("DELETE", "/api/v1/models/{model_id}"): Action.RESOURCES_DELETE,
    ("GET", "/api/v1/models/{model_id}/trainings"): Action.RESOURCES_READ,
    # datasets, and preprocessing (a job an engineer may start)
    ("POST", "/api/v1/datasets"): Action.RESOURCES_UPLOAD,
    ("GET", "/api/v1/datasets"): Action.RESOURCES_READ,
    ("GET", "/api/v1/datasets/{dataset_id}"): Action.RESOURCES_READ,
    ("DELETE", "/api/v1/datasets/{dataset_id}"): Action.RESOURCES_DELETE,
    ("POST", "/api/v1/datasets/{dataset_id}/preprocess"): Action.JOBS_START,
    ("GET", "/api/v1/datasets/{dataset_id}/preprocessings"): Action.RESOURCES_READ,
    (
        "GET",
        "/api/v1/datasets/{dataset_id}/preprocessings/{preprocessing_id}",
    ): Action.RESOURCES_READ,
    # resumable uploads: whoever may upload (a model or dataset is then made of one); what the
    # server speaks (OPTIONS) needs no credentials
    ("OPTIONS", "/api/v1/uploads"): Action.PUBLIC,
    ("POST", "/api/v1/uploads"): Action.RESOURCES_UPLOAD,
    ("HEAD", "/api/v1/uploads/{upload_id}"): Action.RESOURCES_UPLOAD,
    ("PATCH", "/api/v1/uploads/{upload_id}"): Action.RESOURCES_UPLOAD,
    ("DELETE", "/api/v1/uploads/{upload_id}"): Action.RESOURCES_UPLOAD,
    # training and jobs: engineers start and follow, admins cancel
    ("POST", "/api/v1/trainings"): Action.JOBS_START,
    ("GET", "/api/v1/jobs"): Action.RESOURCES_READ,
    ("GET", "/api/v1/jobs/{job_id}"): Action.RESOURCES_READ,
    ("GET", "/api/v1/jobs/{job_id}/events"): Action.RESOURCES_READ,
    ("POST", "/api/v1/jobs/{job_id}/cancel"): Action.JOBS_CANCEL,
    # GA searches: admins start them; engineers read them and train the best configuration
    ("POST", "/api/v1/optimizations"): Action.GA_RUN,
    ("GET", "/api/v1/optimizations"): Action.RESOURCES_READ,
    ("GET", "/api/v1/optimizations/{optimization_id}"): Action.RESOURCES_READ,
    ("GET", "/api/v1/optimizations/{optimization_id}/export"): Action.RESOURCES_READ,
    ("POST", "/api/v1/optimizations/{optimization_id}/train-best"): Action.JOBS_START,
    # benchmarks: engineers start and read them; they follow and cancel as jobs
    ("POST", "/api/v1/benchmarks"): Action.JOBS_START,
    ("GET", "/api/v1/benchmarks"): Action.RESOURCES_READ,
    ("GET", "/api/v1/benchmarks/{benchmark_id}"): Action.RESOURCES_READ,
    ("GET", "/api/v1/models/{model_id}/benchmarks"): Action.RESOURCES_READ,
    # reports: engineers read them in every view and format
    ("GET", "/api/v1/reports"): Action.RESOURCES_READ,
    ("GET", "/api/v1/reports/{report_id}"): Action.RESOURCES_READ,
    ("GET", "/api/v1/benchmarks/{benchmark_id}/report"): Action.RESOURCES_READ,
    ("GET", "/api/v1/models/{model_id}/reports"): Action.RESOURCES_READ,
    # the inference pool: engineers warm models and see where they are; the pool's metrics are
    # system monitoring (predictions themselves are on Serve's port, any role)
    ("POST", "/api/v1/models/{model_id}/serving"): Action.INFERENCE_MANAGE,
    ("GET", "/api/v1/models/{model_id}/serving"): Action.RESOURCES_READ,
    ("GET", "/api/v1/inference/metrics"): Action.SYSTEM_MONITOR,
    # configuration (engineers too); audit log and alerts (admins)
    ("GET", "/api/v1/config"): Action.RESOURCES_READ,
    ("GET", "/api/v1/audit"): Action.SYSTEM_MONITOR,
    ("GET", "/api/v1/alerts"): Action.SYSTEM_MONITOR,
}


def test_every_route_has_an_entry_and_every_entry_a_route() -> None:
    served = {(method, route.path) for method, _, route in ROUTES}
    assert sorted(served - EXPECTED_ACTIONS.keys()) == [], "add these routes to EXPECTED_ACTIONS"
    assert sorted(EXPECTED_ACTIONS.keys() - served) == [], "the app no longer serves these"


@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=ROUTE_IDS)
def test_route_declares_the_expected_action(method: str, path: str, route: GuardedRoute) -> None:
    expected = EXPECTED_ACTIONS.get((method, route.path))
    assert expected is not None, f"{method} {route.path}: add it to EXPECTED_ACTIONS"
    assert route.action is expected
    # The API document tells callers the same.
    assert route.openapi_extra is not None
    assert route.openapi_extra["x-roles"] == sorted(PERMISSIONS[expected])


@pytest.fixture(scope="module")
async def walk(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[InProcessApi, dict[Role, dict[str, str]]]]:
    """One app for the walk, and API-key headers per role (keys, so that walking /logout
    revokes nothing)."""
    async with in_process_api(tmp_path_factory.mktemp("rbac")) as api:
        keys = {"admin": await api.api_key(await api.admin(), "rbac-walk")}
        for role in ("engineer", "viewer"):
            user = await api.new_user(role)
            keys[role] = await api.api_key(user.headers, "rbac-walk")
        yield api, {role: {"X-API-Key": key["key"]} for role, key in keys.items()}  # type: ignore[misc]


@pytest.mark.anyio
@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=ROUTE_IDS)
async def test_route_obeys_the_matrix(
    walk: tuple[InProcessApi, dict[Role, dict[str, str]]],
    method: str,
    path: str,
    route: GuardedRoute,
) -> None:
    api, headers_of = walk
    anonymous = await api.http.request(method, path, json={})
    if route.action is Action.PUBLIC:
        assert anonymous.status_code not in (401, 403)
        assert anonymous.status_code < 500, anonymous.text
        return
    assert anonymous.status_code == 401
    has_body = method != "HEAD"  # a HEAD answer carries no body, so no error body either
    if has_body:
        assert error_of(anonymous)["code"] == "unauthenticated"
    for role in ROLES:
        answer = await api.http.request(method, path, json={}, headers=headers_of[role])
        if can(role, route.action):
            assert answer.status_code not in (401, 403), (role, answer.text)
            assert answer.status_code < 500, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            if has_body:
                assert error_of(answer)["code"] == "forbidden"
