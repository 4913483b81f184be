"""Readiness says which presets and sample datasets a start has not registered yet."""

from __future__ import annotations

from serve_apps.health import startup_status


def test_missing_registrations_are_named() -> None:
    status = startup_status(
        ["yolov8n", "resnet50"], ["digits", "shapes-video"], {"resnet50"}, set()
    )
    assert not status.ok
    assert status.detail == (
        "presets 1 of 2 registered (not yet: yolov8n); "
        "sample datasets 0 of 2 registered (not yet: digits, shapes-video)"
    )


def test_complete_or_nothing_configured_is_ok() -> None:
    done = startup_status(["resnet50"], ["digits"], {"resnet50", "yolov8n"}, {"digits"})
    assert done.ok
    assert done.detail == "presets 1 of 1 registered; sample datasets 1 of 1 registered"
    assert startup_status([], [], set(), set()).ok
