"""The permission matrix of ``design.md`` as data, and the one function that reads it.

Every API route declares one :class:`Action`; the guard asks :func:`can` before any work.
"""

from __future__ import annotations

from enum import StrEnum

from cvplatform.schemas import ROLES, Role


class Action(StrEnum):
    PUBLIC = "public"  # liveness, readiness, login, the API documents: no credentials needed
    SELF = "self"  # who am I, log out, change one's own password, manage one's own API keys
    INFERENCE_RUN = "inference.run"
    INFERENCE_MANAGE = "inference.manage"  # warm a model on the inference pool
    RESOURCES_READ = "resources.read"  # models, datasets, jobs, benchmarks, reports, configuration
    RESOURCES_UPLOAD = "resources.upload"  # models and datasets
    JOBS_START = "jobs.start"  # training with hyperparameters, benchmarks
    GA_RUN = "ga.run"
    JOBS_CANCEL = "jobs.cancel"
    RESOURCES_DELETE = "resources.delete"  # models and datasets
    PACKAGES_GENERATE = "packages.generate"
    USERS_MANAGE = "users.manage"
    SYSTEM_MONITOR = "system.monitor"  # system metrics, alerts, audit log


_EVERYONE: frozenset[Role] = frozenset(ROLES)
_STAFF: frozenset[Role] = frozenset({"admin", "engineer"})
_ADMIN: frozenset[Role] = frozenset({"admin"})

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.PUBLIC: _EVERYONE,
    Action.SELF: _EVERYONE,
    Action.INFERENCE_RUN: _EVERYONE,
    Action.INFERENCE_MANAGE: _STAFF,
    Action.RESOURCES_READ: _STAFF,
    Action.RESOURCES_UPLOAD: _STAFF,
    Action.JOBS_START: _STAFF,
    Action.GA_RUN: _ADMIN,
    Action.JOBS_CANCEL: _ADMIN,
    Action.RESOURCES_DELETE: _ADMIN,
    Action.PACKAGES_GENERATE: _ADMIN,
    Action.USERS_MANAGE: _ADMIN,
    Action.SYSTEM_MONITOR: _ADMIN,
}


def can(role: Role, action: Action) -> bool:
    """Whether a user with ``role`` may perform ``action``."""
    return role in PERMISSIONS[action]


def needs_credentials(action: Action) -> bool:
    return action is not Action.PUBLIC
