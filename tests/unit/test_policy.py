"""The RBAC policy is the permission matrix of design.md, nothing more and nothing less."""

from __future__ import annotations

import pytest

from cvplatform.schemas import ROLES
from serve_apps.auth.policy import PERMISSIONS, Action, can, needs_credentials

# design.md's table, row by row: (action, admin, engineer, viewer)
MATRIX = [
    (Action.SELF, True, True, True),
    (Action.INFERENCE_RUN, True, True, True),
    # Not a row of design.md: warming a model on the pool goes with deploying it (staff).
    (Action.INFERENCE_MANAGE, True, True, False),
    (Action.RESOURCES_READ, True, True, False),
    (Action.RESOURCES_UPLOAD, True, True, False),
    (Action.JOBS_START, True, True, False),
    (Action.GA_RUN, True, False, False),
    (Action.JOBS_CANCEL, True, False, False),
    (Action.RESOURCES_DELETE, True, False, False),
    (Action.PACKAGES_GENERATE, True, False, False),
    (Action.USERS_MANAGE, True, False, False),
    (Action.SYSTEM_MONITOR, True, False, False),
]


@pytest.mark.parametrize(("action", "admin", "engineer", "viewer"), MATRIX)
def test_matrix_row(action: Action, admin: bool, engineer: bool, viewer: bool) -> None:
    assert [can(role, action) for role in ROLES] == [admin, engineer, viewer]


def test_every_action_has_a_row() -> None:
    assert set(PERMISSIONS) == {row[0] for row in MATRIX} | {Action.PUBLIC}


def test_only_public_needs_no_credentials() -> None:
    assert [action for action in Action if not needs_credentials(action)] == [Action.PUBLIC]
